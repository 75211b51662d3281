/**
 * Reads the code framed on stdin (`<length>\n<code>`), then runs it as `python3 -c` would, in `__main__`, with
 * the rest of stdin left to the program. Code of any size works (argv is capped at 128 KiB by the kernel). An
 * uncaught exception is reported as Python reports it (sys.excepthook, exit 1) without the bootstrap's own frame,
 * and a syntax error without any frame, so a traceback shows only the user's lines.
 */
export const PYTHON_BOOTSTRAP = [
  'def _b():',
  ' import os,sys',
  " h=b''",
  " while not h.endswith(b'\\n'):",
  '  c=os.read(0,1)',
  "  if not c: raise SystemExit('container-pool: truncated code frame')",
  '  h+=c',
  ' n=int(h);b=bytearray()',
  ' while len(b)<n:',
  '  c=os.read(0,min(n-len(b),1<<20))',
  "  if not c: raise SystemExit('container-pool: truncated code frame')",
  '  b+=c',
  " sys.argv[:]=['-c']",
  " return compile(bytes(b),'<string>','exec')",
  'try:',
  ' _c=_b()',
  'except SyntaxError as _e:',
  " __import__('sys').excepthook(type(_e),_e.with_traceback(None),None)",
  ' raise SystemExit(1)',
  'del _b',
  'try:',
  " exec(globals().pop('_c'))",
  'except (SystemExit,KeyboardInterrupt):',
  ' raise',
  'except BaseException as _e:',
  ' _t=_e.__traceback__.tb_next',
  " __import__('sys').excepthook(type(_e),_e.with_traceback(_t),_t)",
  ' raise SystemExit(1)',
].join('\n');

/** argv of the bootstrap, and the frame (`<length>\n<code>`) that goes ahead of the caller's stdin. */
export function pythonCodeJob(
  code: Buffer,
  pythonCommand: string[],
): { cmd: string[]; stdinPrefix: Buffer } {
  const stdinPrefix = Buffer.concat([Buffer.from(`${code.length}\n`, 'ascii'), code]);
  return { cmd: [...pythonCommand, '-c', PYTHON_BOOTSTRAP], stdinPrefix };
}
