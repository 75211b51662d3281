/**
 * Rich outputs of a session's code call (`CodeResult.outputs`): what a notebook shows besides the streams. Their
 * content is the user code's own word (rendered by its objects' `_repr_*_` methods).
 */

/** `result`: the value of the cell's trailing expression; `display`: a display() call or a matplotlib figure. */
export type CodeOutputType = 'result' | 'display';

/** One output's representations by MIME type; `text/plain` is always there. */
export interface OutputData {
  'text/plain': string;
  'text/html'?: string;
  'text/markdown'?: string;
  'text/latex'?: string;
  'image/svg+xml'?: string;
  /** The PNG's bytes (base64 over HTTP). */
  'image/png'?: Buffer;
  /** The JPEG's bytes (base64 over HTTP). */
  'image/jpeg'?: Buffer;
  /** Any JSON value (`_repr_json_`). */
  'application/json'?: unknown;
}

export interface CodeOutput {
  type: CodeOutputType;
  data: OutputData;
}
