/**
 * A tiny uncased BERT-like encoder for tests: a 27-token WordPiece vocabulary and an ONNX graph whose
 * last_hidden_state is word[input_ids] + type[token_type_ids] + attention_mask * MASK_ROW (H = 4).
 * Shared by the encoder, static-embedder and model-pull tests.
 */
import { DataType, f32Initializer, i64Initializer, onnxModel, type GraphSpec } from './onnx-writer.js';

export const VOCAB = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', // 0-4
  'a', 'red', 'shirt', '##s', 't', // 5-9
  '-', 'cafe', 'boot', ',', '.', // 10-14
  '!', 'un', '##aff', '##able', 'photo', // 15-19
  'of', '中', '文', 'the', '$', // 20-24
  '##ning', 'run', // 25-26
];
export const VOCAB_TXT = `${VOCAB.join('\n')}\n`;

export const H = 4;
/** Word-embedding table: distinct, non-zero rows (the [PAD] row too, so padding leaks would show). */
export const wordRow = (id: number) => [Math.sin(id + 1), Math.cos(2 * id + 1), (id % 5) - 1.5, 0.1 * id + 0.05];
export const WORD = VOCAB.flatMap((_, id) => wordRow(id));
export const TYPE = [0.5, -0.25, 0.125, 1, /* type 1: */ 9, 9, 9, 9];
/** Added to every real token through the attention mask, so a mask not fed (or fed wrong) shows. */
export const MASK_ROW = [0.3, 0.2, -0.1, 0.4];

/** last_hidden_state = word[input_ids] + type[token_type_ids] + mask * MASK_ROW; every input used. */
export function fullOnnxGraph(word = WORD): GraphSpec {
  const dyn = (name: string) => ({ name, elemType: DataType.INT64, shape: ['batch', 'seq'] });
  return {
    inputs: [dyn('input_ids'), dyn('attention_mask'), dyn('token_type_ids')],
    outputs: [{ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 'seq', H] }],
    initializers: [
      f32Initializer('word', [VOCAB.length, H], word),
      f32Initializer('type', [2, H], TYPE),
      f32Initializer('mask_row', [H], MASK_ROW),
      i64Initializer('axis2', [1], [2]),
    ],
    nodes: [
      { op: 'Gather', inputs: ['word', 'input_ids'], outputs: ['w'], attributes: { axis: 0 } },
      { op: 'Gather', inputs: ['type', 'token_type_ids'], outputs: ['t'], attributes: { axis: 0 } },
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['mf'], attributes: { to: DataType.FLOAT } },
      { op: 'Unsqueeze', inputs: ['mf', 'axis2'], outputs: ['mf3'] },
      { op: 'Mul', inputs: ['mf3', 'mask_row'], outputs: ['m'] },
      { op: 'Add', inputs: ['w', 't'], outputs: ['wt'] },
      { op: 'Add', inputs: ['wt', 'm'], outputs: ['last_hidden_state'] },
    ],
  };
}

/** The full model as ONNX bytes. */
export const tinyBertOnnx = (word = WORD): Uint8Array => onnxModel(fullOnnxGraph(word));

/** tokenizer.json `added_tokens` for the BERT specials of a vocabulary (ids looked up in `ids`). */
export function bertSpecialAddedTokens(ids: Record<string, number>): Record<string, unknown>[] {
  return ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content) => ({
    id: ids[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}
