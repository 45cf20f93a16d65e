// Placeholder while the static embedder is written (this session); replaced before commit.
import { StateError } from '../errors.js';
import type { CaptionEmbedder, ResolvedEmbedderSettings } from './embedder.js';
export async function createStaticEmbedder(settings: ResolvedEmbedderSettings<'static'>): Promise<CaptionEmbedder> {
  throw new StateError(`static embedder not available yet (${settings.dir})`);
}
