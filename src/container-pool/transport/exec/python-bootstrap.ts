/**
 * Reads the code framed on stdin (`<length>\n<code>`), then runs it as `python3 -c` would, in `__main__`, with
 * the rest of stdin left to the program. Code of any size works (argv is capped at 128 KiB by the kernel). The
 * default sys.excepthook is wrapped to leave out the bootstrap's own frames, so an uncaught exception (exit 1;
 * KeyboardInterrupt: 130) and a syntax error show only the user's lines, as `python3 -c` shows them. A hook the
 * program installs itself gets the whole traceback. With the argument `-l` (the caller streams the output), stdout
 * is made line-buffered, as a terminal would have it (stdout on a pipe is block-buffered; stderr is
 * line-buffered already): the environment stays the caller's.
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
  " if sys.argv[1:]==['-l']:sys.stdout.reconfigure(line_buffering=True)",
  " del globals()['_b']",
  " sys.argv[:]=['-c']",
  // The uncaught-exception report (sys.excepthook, as Python calls it) without the bootstrap's own frames.
  ' s=(sys._getframe(1).f_code,sys._getframe().f_code);k=sys.excepthook',
  // Bound at definition: the program's own names (it may rebind BaseException) never reach the hook.
  ' def e(t,v,tb,s=s,k=k,B=BaseException,I=isinstance):',
  '  while tb is not None and tb.tb_frame.f_code in s: tb=tb.tb_next',
  '  k(t,v.with_traceback(tb) if I(v,B) else v,tb)',
  ' sys.excepthook=e',
  " return compile(bytes(b),'<string>','exec')",
  'exec(_b())',
].join('\n');

/** argv of the bootstrap, and the frame (`<length>\n<code>`) that goes ahead of the caller's stdin. */
export function pythonCodeJob(
  code: Buffer,
  pythonCommand: string[],
  opts: { lineBuffered?: boolean } = {},
): { cmd: string[]; stdinPrefix: Buffer } {
  const stdinPrefix = Buffer.concat([Buffer.from(`${code.length}\n`, 'ascii'), code]);
  const cmd = [...pythonCommand, '-c', PYTHON_BOOTSTRAP];
  if (opts.lineBuffered) cmd.push('-l');
  return { cmd, stdinPrefix };
}
