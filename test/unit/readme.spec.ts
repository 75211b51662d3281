/*
 * Every ```ts block of README.md compiles as pasted: each block is a file of a program type-checked with the
 * project's settings, `container-pool` mapped to src/index.ts. A block whose first line is a comment naming a
 * file (`// tools.module.ts`) is that file, so that blocks can import each other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const ROOT = join(__dirname, '../..');
/** Where the blocks live (virtually): inside the repository, so that node_modules resolves. */
const DIR = join(ROOT, 'test', '.readme-blocks');

function readmeBlocks(): { file: string; code: string; line: number }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks: { file: string; code: string; line: number }[] = [];
  for (const m of readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = m[1];
    const named = /^\/\/ ([\w.-]+\.ts)\n/.exec(code);
    const line = readme.slice(0, m.index).split('\n').length + 1;
    blocks.push({ file: join(DIR, named ? named[1] : `block-at-line-${line}.ts`), code, line });
  }
  return blocks;
}

describe('README', () => {
  const blocks = readmeBlocks();

  it('has TypeScript blocks: the library example and a host entry point', () => {
    expect(blocks.map((b) => b.file.slice(DIR.length + 1))).toEqual(
      expect.arrayContaining(['tools.module.ts', 'main.ts']),
    );
  });

  it('every ts block type-checks against the package source', () => {
    const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const options: ts.CompilerOptions = {
      ...parsed.options,
      noEmit: true,
      incremental: false,
      types: ['node'],
      baseUrl: ROOT,
      paths: { 'container-pool': [join(ROOT, 'src/index.ts')] },
      noUnusedLocals: true,
    };
    const virtual = new Map(blocks.map((b) => [b.file, b.code]));
    const host = ts.createCompilerHost(options);
    const { fileExists, readFile, getSourceFile } = host;
    const directoryExists = host.directoryExists?.bind(host);
    host.directoryExists = (d) => d === DIR || (directoryExists ? directoryExists(d) : true);
    host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
    host.readFile = (f) => virtual.get(f) ?? readFile.call(host, f);
    host.getSourceFile = (f, lang, onError, create) => {
      const code = virtual.get(f);
      return code !== undefined
        ? ts.createSourceFile(f, code, lang)
        : getSourceFile.call(host, f, lang, onError, create);
    };
    const program = ts.createProgram([...virtual.keys()], options, host);
    const problems = blocks.flatMap((b) =>
      ts.getPreEmitDiagnostics(program, program.getSourceFile(b.file)).map((d) => {
        const pos =
          d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
        const where =
          d.file?.fileName === b.file ? `README.md:${b.line + pos}` : (d.file?.fileName ?? '');
        return `${where}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      }),
    );
    expect(problems).toEqual([]);
  }, 60_000);
});
