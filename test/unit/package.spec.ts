/*
 * The published package: what package.json ships and declares, and that the emitted .d.ts name only packages
 * a consumer is sure to have (dependencies, required peers, Node's own modules): never an optional peer
 * (@nestjs/swagger) nor a package whose types are missing (dockerode without @types/dockerode).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';

const ROOT = join(__dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  files: string[];
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

describe('package.json', () => {
  it('builds on install from git and on pack (prepare), and ships the library, the bin and the image script only', () => {
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.files).toEqual(
      expect.arrayContaining([
        'dist',
        'bin',
        'scripts/build-sandbox-image.sh',
        'scripts/lib/common.sh',
      ]),
    );
    expect(pkg.files).not.toContain('scripts');
    expect(pkg.files).toEqual(expect.arrayContaining(['!dist/main.*', '!dist/**/*.map']));
    expect(pkg.bin).toEqual({ 'container-pool': 'bin/container-pool.js' });
    expect(statSync(join(ROOT, pkg.bin['container-pool'])).mode & 0o111).toBeTruthy();
  });

  it('supports Nest 11 and 12 and shares class-validator/class-transformer with the host', () => {
    for (const p of ['@nestjs/common', '@nestjs/core', '@nestjs/terminus', '@nestjs/swagger']) {
      expect(pkg.peerDependencies[p]).toMatch(/\^11\.\d+\.\d+ \|\| \^12\.0\.0/);
    }
    expect(pkg.peerDependencies['@nestjs/schedule']).toBe('^6.0.0 || ^12.0.0');
    expect(pkg.peerDependencies['class-validator']).toBeDefined();
    expect(pkg.peerDependencies['class-transformer']).toBeDefined();
    expect(pkg.dependencies['class-validator']).toBeUndefined();
    expect(pkg.dependencies['class-transformer']).toBeUndefined();
    expect(pkg.peerDependenciesMeta['@nestjs/swagger']).toEqual({ optional: true });
    expect(pkg.peerDependenciesMeta['@nestjs/platform-express']).toEqual({ optional: true });
    // The types of what the published .d.ts name come with the package.
    expect(pkg.dependencies['@types/dockerode']).toBeDefined();
  });

  it('has the LICENSE its "license" names (npm packs it whatever `files` says)', () => {
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} [^\n]+\n\nPermission is hereby granted, free of charge/,
    );
  });

  it('does not need @nestjs/config: no peer (npm would give a Nest 11 app its ESM 12.x), and no source imports it', () => {
    expect(pkg.peerDependencies['@nestjs/config']).toBeUndefined();
    expect(pkg.dependencies['@nestjs/config']).toBeUndefined();
    const importers = walk(join(ROOT, 'src'))
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /['"]@nestjs\/config['"]/.test(readFileSync(f, 'utf8')));
    expect(importers).toEqual([]);
  });
});

describe('published type declarations', () => {
  let out = '';
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'container-pool-dts-'));
    execFileSync(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '-p',
        join(ROOT, 'tsconfig.build.json'),
        '--emitDeclarationOnly',
        '--outDir',
        out,
      ],
      { cwd: ROOT, stdio: 'pipe' },
    );
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('import only dependencies, required peers and Node modules', () => {
    const allowed = new Set([
      ...Object.keys(pkg.dependencies),
      ...Object.keys(pkg.peerDependencies).filter((p) => !pkg.peerDependenciesMeta[p]?.optional),
    ]);
    const bad: string[] = [];
    const files = walk(out).filter((f) => f.endsWith('.d.ts'));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        if (spec.startsWith('.')) continue;
        if (spec.startsWith('node:') || builtinModules.includes(packageOf(spec))) continue;
        const name = packageOf(spec);
        // dockerode's types are @types/dockerode, a dependency.
        if (allowed.has(name) && (name !== 'dockerode' || allowed.has('@types/dockerode')))
          continue;
        bad.push(`${file.slice(out.length + 1)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keep the OpenAPI decorators (typed by the optional @nestjs/swagger) out', () => {
    // Wherever the module keeps it (container-pool/openapi/ or container-pool/http/openapi/).
    const swagger = walk(out).find((f) => f.endsWith(`${sep}openapi${sep}swagger.d.ts`));
    expect(swagger).toBeDefined();
    expect(readFileSync(swagger!, 'utf8')).not.toMatch(/ApiProperty|typeof Swagger/);
  });
});
