/*
 * The route collision check: paths compared as Express matches them (case-insensitive, parameters and
 * wildcards meeting literals, with the global prefix and URI versions), host and pool routes, two pools.
 */
import {
  Controller,
  Get,
  INestApplication,
  Logger,
  Module,
  RequestMethod,
  Type,
  Version,
  VERSION_NEUTRAL,
  VersioningType,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import { ContainerPoolHttpModule } from '../../src/container-pool/http/container-pool-http';
import {
  collisionOf,
  overlapOf,
  routesOf,
  segmentsOf,
} from '../../src/container-pool/http/route-paths';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { FakeDriver } from '../support/fake-driver';

const TOKEN = 'unit-admin-token-0123456789';

describe('route paths', () => {
  it('a parameter or a wildcard meets a literal; literals compare case-insensitively', () => {
    expect(overlapOf('/pool/:id', '/pool/containers')).toBe('/pool/containers');
    expect(overlapOf('/Health/READY', '/health/ready')).toBe('/Health/READY');
    expect(overlapOf('/Health/READY', '/health/ready', true)).toBeNull();
    expect(overlapOf('/a/:x/c', '/a/b/:y')).toBe('/a/b/c');
    expect(overlapOf('/a/b', '/a/c')).toBeNull();
    expect(overlapOf('/a/:id', '/a')).toBeNull();
    expect(overlapOf('/a/:id', '/a/b/c')).toBeNull();
  });

  it('wildcards and optional segments as Express 5 and Nest legacy paths write them', () => {
    expect(overlapOf('/a/{*path}', '/a')).toBe('/a');
    expect(overlapOf('/a/*', '/a/b/c')).toBe('/a/b/c');
    expect(overlapOf('/a/*splat', '/a')).toBeNull();
    expect(overlapOf('/a/*splat', '/a/b/c')).toBe('/a/b/c');
    expect(overlapOf('/a/(.*)', '/a/x')).toBe('/a/x');
    expect(overlapOf('/a{/:id}', '/a')).toBe('/a');
    expect(overlapOf('/a/:id?', '/a/b')).toBe('/a/b');
    expect(overlapOf('/*', '/metrics')).toBe('/metrics');
    expect(overlapOf('/file.:ext', '/file.txt')).toBe('/file.txt');
    expect(segmentsOf('/a/:b/{*c}')).toEqual([
      { kind: 'literal', text: 'a' },
      { kind: 'one' },
      { kind: 'rest' },
    ]);
  });

  it('methods: ALL meets every one, HEAD meets GET; versions of header versioning must share one', () => {
    const r = (method: RequestMethod, path: string, versions?: string[]) => ({
      method,
      path,
      where: 'X.y',
      versions,
    });
    expect(collisionOf(r(RequestMethod.GET, '/a'), r(RequestMethod.ALL, '/:x'))).toBe('GET /a');
    expect(collisionOf(r(RequestMethod.GET, '/a'), r(RequestMethod.HEAD, '/a'))).toBe('HEAD /a');
    expect(collisionOf(r(RequestMethod.GET, '/a'), r(RequestMethod.POST, '/a'))).toBeNull();
    expect(collisionOf(r(RequestMethod.GET, '/a', ['1']), r(RequestMethod.GET, '/a', ['2']))).toBe(
      null,
    );
    expect(collisionOf(r(RequestMethod.GET, '/a', ['1']), r(RequestMethod.GET, '/a'))).toBe(
      'GET /a',
    );
  });

  it('routes at their registered paths: global prefix (unless excluded), URI version, module path', () => {
    @Controller({ path: 'health', version: '1' })
    class V1 {
      @Get('ready')
      ready() {}
      @Get('live')
      @Version(['2', VERSION_NEUTRAL])
      live() {}
    }
    @Controller('plain')
    class Plain {
      @Get()
      get() {}
    }
    const uri = { versioning: { type: VersioningType.URI } as const };
    expect(routesOf(V1, uri).map((r) => r.path)).toEqual([
      '/v1/health/ready',
      '/v2/health/live',
      '/health/live',
    ]);
    expect(routesOf(Plain, uri).map((r) => r.path)).toEqual(['/plain']);
    expect(
      routesOf(Plain, {
        versioning: { type: VersioningType.URI, prefix: 'version-', defaultVersion: '3' },
      }).map((r) => r.path),
    ).toEqual(['/version-3/plain']);
    expect(
      routesOf(V1, { versioning: { type: VersioningType.HEADER, header: 'X-V' } }).map((r) => [
        r.path,
        r.versions,
      ]),
    ).toEqual([
      ['/health/ready', ['1']],
      ['/health/live', ['2', 'VERSION_NEUTRAL']],
    ]);
    const prefixed = routesOf(Plain, {
      globalPrefix: '/api/',
      modulePath: 'mod',
      excludedFromPrefix: (path) => path === '/mod/plain',
    });
    expect(prefixed.map((r) => r.path)).toEqual(['/mod/plain']);
    expect(routesOf(Plain, { globalPrefix: 'api' }).map((r) => r.path)).toEqual(['/api/plain']);
  });
});

/** The warnings of the check in an app of these modules and controllers. */
async function warningsOf(
  imports: any[],
  controllers: Type[] = [],
  prepare: (app: INestApplication) => void = () => undefined,
): Promise<string[]> {
  const warn: string[] = [];
  const spy = jest
    .spyOn(Logger.prototype, 'warn')
    .mockImplementation((m: unknown) => void warn.push(String(m)));
  const moduleRef = await Test.createTestingModule({ imports, controllers })
    .overrideProvider(CONTAINER_DRIVER)
    .useValue(new FakeDriver())
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  try {
    prepare(app);
    await app.init();
    return warn.filter((w) => /^route /.test(w));
  } finally {
    await app.close();
    spy.mockRestore();
  }
}

const pool = (options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {}) =>
  ContainerPoolModule.forRoot({
    image: 'fake:latest',
    size: 0,
    adminToken: TOKEN,
    replenishIntervalMs: 60_000,
    ...options,
  });

describe('RouteCollisionCheck', () => {
  it("a host's parameter route over a pool route: the request both answer, who answers, the setting", async () => {
    @Controller('admin/pool')
    class HostPoolController {
      @Get(':id')
      byId() {}
    }
    const warnings = await warningsOf(
      [pool({ name: 'p1', http: { healthPath: false, metricsPath: false } })],
      [HostPoolController],
    );
    expect(warnings).toEqual(
      ['containers', 'profiles', 'sessions'].map(
        (route) =>
          `route GET /admin/pool/${route} of the container pool "p1" overlaps the host's ` +
          `HostPoolController.byId (GET /admin/pool/:id): a request such as GET /admin/pool/${route} ` +
          "matches both; only the one registered first (the host's) answers it. Move the pool's route with " +
          "http.prefix or change the host's.",
      ),
    );
  });

  it('paths differing in case collide; the setting is named as the host wrote it', async () => {
    @Controller('HEALTH')
    class HostHealthController {
      @Get('Ready')
      ready() {}
    }
    const warnings = await warningsOf(
      [pool({ http: true, adminApi: false, metricsPath: false, healthPath: 'health' })],
      [HostHealthController],
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^route GET \/health\/ready of the container pool "[^"]+" is also served by the host's HostHealthController\.ready \(GET \/HEALTH\/Ready\); .* with healthPath or/,
    );
  });

  it('versioned host routes: under URI versioning they live under /v1 and collide with nothing', async () => {
    @Controller({ path: 'health', version: '1' })
    class VersionedHealth {
      @Get('ready')
      ready() {}
    }
    const imports = [pool({ http: { adminApi: false, metricsPath: false } })];
    const uri = (app: INestApplication) => app.enableVersioning({ type: VersioningType.URI });
    expect(await warningsOf(imports, [VersionedHealth], uri)).toEqual([]);
    // A default version puts the pool's routes under it too: both at /v1/health/ready.
    const both = await warningsOf(imports, [VersionedHealth], (app) =>
      app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' }),
    );
    expect(both).toEqual([expect.stringMatching(/^route GET \/v1\/health\/ready .* also served/)]);
    // Header versioning: same path, the route of another version is no collision unless ours has none.
    const header = await warningsOf(imports, [VersionedHealth], (app) =>
      app.enableVersioning({ type: VersioningType.HEADER, header: 'X-Version' }),
    );
    expect(header).toHaveLength(1);
  });

  it('a global prefix applies to both; a host route excluded from it is elsewhere', async () => {
    @Controller('health')
    class HostHealth {
      @Get('ready')
      ready() {}
    }
    const imports = [pool({ http: { adminApi: false, metricsPath: false } })];
    const prefixed = await warningsOf(imports, [HostHealth], (app) => app.setGlobalPrefix('api'));
    expect(prefixed).toEqual([expect.stringMatching(/^route GET \/api\/health\/ready /)]);
    const excluded = await warningsOf(imports, [HostHealth], (app) =>
      app.setGlobalPrefix('api', {
        exclude: [{ path: 'health/ready', method: RequestMethod.GET }],
      }),
    );
    // Excluded: the pool's is excluded too (same path and method), so both are at /health/ready.
    expect(excluded).toEqual([expect.stringMatching(/^route GET \/health\/ready /)]);
    const other = await warningsOf(imports, [HostHealth], (app) =>
      app.setGlobalPrefix('api', { exclude: [{ path: 'health/live', method: RequestMethod.GET }] }),
    );
    expect(other).toEqual([expect.stringMatching(/^route GET \/api\/health\/ready /)]);
  });

  it('two pools with the default health and metrics paths: each pair once, naming both settings', async () => {
    @Module({ imports: [pool({ name: 'one', http: { prefix: 'one' } })] })
    class One {}
    @Module({ imports: [pool({ name: 'two', http: true, adminPrefix: 'two' })] })
    class Two {}
    const warnings = await warningsOf([One, Two]);
    expect(warnings).toHaveLength(3);
    for (const path of ['/health/live', '/health/ready', '/metrics']) {
      expect(warnings).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^route GET ${path} of the container pool "one" is also served by another container ` +
              `pool's route [\\w.]+ \\(pool "two"\\) \\(GET ${path}\\); only the one registered first \\(this pool's\\) ` +
              'answers it\\. Give each pool its own paths: change http\\.(healthPath|metricsPath) of this pool or ' +
              'http\\.(healthPath|metricsPath) of the other\\.$',
          ),
        ),
      );
    }
  });

  it('the same pool served twice (forRoot http and ContainerPoolHttpModule): every route once', async () => {
    const warnings = await warningsOf([
      pool({ isGlobal: true, http: true }),
      ContainerPoolHttpModule.register(),
    ]);
    // 9 admin and execution routes, the profiles list, each profile's copies of the 9, 9 session routes, 2
    // health, 1 metrics.
    expect(warnings).toHaveLength(31);
    expect(warnings.join('\n')).toMatch(
      /ContainerPoolHttpModule\.register\(\{ prefix \}\) of the other/,
    );
  });

  it('two routes of one pool on the same request: InvalidPoolConfigError naming both settings', () => {
    let error: unknown;
    try {
      ContainerPoolModule.forRoot({ http: { prefix: 'metrics' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPoolConfigError);
    expect((error as InvalidPoolConfigError).problems).toEqual([
      'http.metricsPath puts ContainerPoolMetricsController.scrape on GET /metrics, which ' +
        'ContainerPoolController.stats of http.prefix answers: give them different paths',
    ]);
    expect(() =>
      ContainerPoolModule.forRoot({ http: { prefix: 'ops', healthPath: 'ops' } }),
    ).not.toThrow();
  });
});
