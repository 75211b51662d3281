/**
 * Reads the code framed on stdin (`<length>\n<code>`), then runs it as `python3 -c` would, in `__main__`, with
 * the rest of stdin left to the program. Code of any size works (argv is capped at 128 KiB by the kernel).
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
  " del globals()['_b']",
  " sys.argv[:]=['-c']",
  " return compile(bytes(b),'<string>','exec')",
  'exec(_b())',
].join('\n');

/** argv of the bootstrap, and the frame (`<length>\n<code>`) that goes ahead of the caller's stdin. */
export function pythonCodeJob(
  code: Buffer,
  pythonCommand: string[],
): { cmd: string[]; stdinPrefix: Buffer } {
  const stdinPrefix = Buffer.concat([Buffer.from(`${code.length}\n`, 'ascii'), code]);
  return { cmd: [...pythonCommand, '-c', PYTHON_BOOTSTRAP], stdinPrefix };
}
