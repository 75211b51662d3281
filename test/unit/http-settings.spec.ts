/*
 * The HTTP settings of the module (forRoot's `http` and its extras, ContainerPoolHttpModule.register): invalid
 * ones fail the start with one InvalidPoolConfigError naming each setting as the host wrote it.
 */
import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import {
  ContainerPoolHttpModule,
  httpSettingsOf,
} from '../../src/container-pool/http/container-pool-http';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { FakeDriver } from '../support/fake-driver';

/** The problems of the InvalidPoolConfigError that `fn` throws. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    expect((err as InvalidPoolConfigError).code).toBe('INVALID_CONFIG');
    return (err as InvalidPoolConfigError).problems;
  }
  throw new Error('expected an InvalidPoolConfigError');
}

describe('HTTP settings', () => {
  it('an invalid prefix or path of the http object is named http.<setting>, every problem at once', () => {
    const problems = problemsOf(() =>
      ContainerPoolModule.forRoot({
        http: { prefix: 'admin pool', healthPath: '', metricsPath: 5 as unknown as string },
      }),
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^http\.prefix must be a URL path .* got "admin pool"$/);
    expect(problems[1]).toMatch(/^http\.healthPath must be a URL path .* got ""$/);
    expect(problems[2]).toMatch(/^http\.metricsPath must be a URL path .* got 5$/);
  });

  it('a forRoot extra is named as the extra; forRootAsync checks the same', () => {
    expect(
      problemsOf(() => ContainerPoolModule.forRoot({ http: true, adminPrefix: 'admin/../x' })),
    ).toEqual([expect.stringMatching(/^adminPrefix must be a URL path .*not "\." or "\.\."/)]);
    expect(
      problemsOf(() =>
        ContainerPoolModule.forRootAsync({
          useFactory: () => ({}),
          http: { metricsPath: 'metrics?x=1' },
        }),
      ),
    ).toEqual([expect.stringMatching(/^http\.metricsPath must be/)]);
  });

  it('http of another type, unknown keys, adminApi not a boolean, prefix and adminPrefix both', () => {
    expect(
      problemsOf(() => ContainerPoolModule.forRoot({ http: 'yes' as unknown as boolean })),
    ).toEqual([expect.stringMatching(/^http must be true, false or \{ prefix, .*got "yes"/)]);
    const problems = problemsOf(() =>
      ContainerPoolModule.forRoot({
        http: {
          prefx: 'ops',
          adminApi: 'no',
          prefix: 'a',
          adminPrefix: 'b',
        } as unknown as boolean,
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^unknown HTTP option http\.prefx: the options are prefix, /),
      'http.adminApi must be a boolean, got "no"',
      'http.prefix and http.adminPrefix name the same setting: give one of them',
    ]);
  });

  it('ContainerPoolHttpModule.register names its own options', () => {
    expect(problemsOf(() => ContainerPoolHttpModule.register({ prefix: 'x%2fy' }))).toEqual([
      expect.stringMatching(
        /^ContainerPoolHttpModule\.register\(\{ prefix \}\) must be a URL path/,
      ),
    ]);
  });

  it('valid paths: slashes around are dropped, false turns a route off, no http is no route', () => {
    const s = httpSettingsOf({ prefix: '/ops/pool/', healthPath: false, metricsPath: 'm' });
    expect(s).toMatchObject({ adminPrefix: 'ops/pool', healthPath: null, metricsPath: 'm' });
    // stats and containers, executions, profiles, sessions and their files, each profile's copies of the first
    // two, metrics
    expect(s.controllers).toHaveLength(8);
    expect(ContainerPoolModule.forRoot({ adminPrefix: 'not a path' }).controllers).toEqual([]);
  });
});

describe('HTTP settings with http off', () => {
  const TOKEN = 'unit-admin-token-0123456789';

  /** The warnings of the ContainerPoolHttp logger while an app of these modules starts. */
  async function warningsOf(imports: any[]): Promise<string[]> {
    const warn: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'warn').mockImplementation(function (
      this: Logger,
      m: unknown,
    ) {
      if ((this as unknown as { context?: string }).context === 'ContainerPoolHttp') {
        warn.push(String(m));
      }
    });
    const moduleRef = await Test.createTestingModule({ imports })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
      return warn;
    } finally {
      await app.close();
      spy.mockRestore();
    }
  }
  const pool = (options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {}) =>
    ContainerPoolModule.forRoot({ image: 'fake:latest', size: 0, ...options });

  it('HTTP extras without http: one warning naming each, saying they are ignored and what to add', async () => {
    expect(await warningsOf([pool({ adminPrefix: 'ops', healthPath: false })])).toEqual([
      "adminPrefix and healthPath of forRoot are ignored: they place the module's HTTP routes, and http " +
        'is off, so the module serves none. Add http: true to forRoot to serve them there, ' +
        'or drop them.',
    ]);
    expect(await warningsOf([pool({ http: false, metricsPath: 'm' })])).toEqual([
      expect.stringMatching(/^metricsPath of forRoot is ignored: it places .* and http is off,/),
    ]);
  });

  it('tokens, metricsPublic or maxBodyBytes without any route: one warning naming each', async () => {
    const warnings = await warningsOf([
      pool({ adminToken: TOKEN, readToken: [`r-${TOKEN}`], maxBodyBytes: '1m' }),
    ]);
    expect(warnings).toEqual([
      "adminToken, readToken and maxBodyBytes only apply to the module's HTTP routes, and it serves none: " +
        'http is off in forRoot and no ContainerPoolHttpModule serves this pool. Add http: true ' +
        'to forRoot (or register the pool with isGlobal: true and import ContainerPoolHttpModule.register()) ' +
        'to serve the routes, or drop these settings.',
    ]);
    expect(await warningsOf([pool({ metricsPublic: true })])).toEqual([
      expect.stringMatching(/^metricsPublic only applies to the module's HTTP routes/),
    ]);
  });

  it('nothing given, http on, or a ContainerPoolHttpModule serving the global pool: no such warning', async () => {
    expect(await warningsOf([pool()])).toEqual([]);
    expect(await warningsOf([pool({ http: true, adminToken: TOKEN, adminPrefix: 'ops' })])).toEqual(
      [],
    );
    expect(
      await warningsOf([
        pool({ isGlobal: true, adminToken: TOKEN }),
        ContainerPoolHttpModule.register({ prefix: 'ops' }),
      ]),
    ).toEqual([]);
    // The extras still are ignored there: register() takes its own.
    expect(
      await warningsOf([
        pool({ isGlobal: true, adminToken: TOKEN, adminPrefix: 'ops' }),
        ContainerPoolHttpModule.register(),
      ]),
    ).toEqual([
      expect.stringMatching(
        /^adminPrefix of forRoot is ignored: .*; ContainerPoolHttpModule\.register\(\) takes its own \(register\(\{ prefix \}\)\), or drop them\.$/,
      ),
    ]);
  });
});
