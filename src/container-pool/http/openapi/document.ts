import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplication, Logger } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../../interfaces/http-settings.interface';
import type * as Swagger from '@nestjs/swagger';
import { ContainerPoolMetricsController } from '../metrics.controller';
import { appRouting, basePathsOf } from '../route-paths';
import { ADMIN_BEARER_SCHEME, swaggerAvailable } from './swagger';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The routes of the app's pool, when it has one. */
function httpSettingsOf(app: INestApplication): ContainerPoolHttpSettings | undefined {
  try {
    return app.get<ContainerPoolHttpSettings>(CONTAINER_POOL_HTTP_SETTINGS, { strict: false });
  } catch {
    return undefined;
  }
}

/** The app's config (global prefix, versioning), when it has one. */
function configOf(app: INestApplication): ApplicationConfig | undefined {
  try {
    return app.get(ApplicationConfig, { strict: false });
  } catch {
    return undefined;
  }
}

/**
 * Where the app serves the pool's prefixed routes and its metrics, as a client calls them: with the app's global
 * prefix (unless excluded) and URI version, e.g. `/api/admin/pool`.
 */
function servedPaths(app: INestApplication): { prefix: string; metrics: string } {
  const settings = httpSettingsOf(app);
  const context = appRouting(configOf(app)).contextOf();
  const admin = settings?.adminControllers[0];
  const metrics = settings?.controllers.find(
    (c) => c.prototype instanceof ContainerPoolMetricsController,
  );
  return {
    prefix: admin ? basePathsOf(admin, context)[0] : '/admin/pool',
    metrics: metrics ? basePathsOf(metrics, context)[0] : '/metrics',
  };
}

/**
 * Serves the OpenAPI document of the app (every route of the pool's module included) at `/<path>` (Swagger UI)
 * and `/<path>-json`, with the admin bearer scheme declared. Returns false, serving nothing (and saying so in the
 * log), when @nestjs/swagger is not installed. Host apps with their own document only need
 * `.addBearerAuth({ type: 'http', scheme: 'bearer' }, ADMIN_BEARER_SCHEME)` on their DocumentBuilder.
 *
 * With a global prefix (`app.setGlobalPrefix('api')`), the document's paths and its description carry it
 * (`/api/admin/pool/...`), whether it is set before or after this call; the UI and the JSON stay at `/<path>`
 * unless `useGlobalPrefix` puts them under the prefix too (`/api/<path>`), as SwaggerModule does (that one needs
 * the prefix set before this call).
 */
export function setupContainerPoolDocs(
  app: INestApplication,
  path = 'docs',
  options: { useGlobalPrefix?: boolean } = {},
): boolean {
  if (!swaggerAvailable) {
    new Logger('ContainerPoolDocs').warn(
      `@nestjs/swagger is not installed, so /${path} is not served: npm install @nestjs/swagger to get the ` +
        "OpenAPI document of the pool's routes.",
    );
    return false;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DocumentBuilder, SwaggerModule } = require('@nestjs/swagger') as typeof Swagger;
  // Built when first asked for, so that the app's global prefix and versioning are those it serves with.
  const document = () => {
    const { prefix, metrics } = servedPaths(app);
    const config = new DocumentBuilder()
      .setTitle('container-pool')
      .setDescription(
        'Warm pool of hardened Docker containers for running untrusted code. Every route under ' +
          `\`${prefix}\` (the admin API, \`POST ${prefix}/executions\` and the sessions, ` +
          `\`${prefix}/sessions/...\`) needs ` +
          '`Authorization: Bearer <token>` with a token whose scope allows it: admin (POOL_ADMIN_TOKEN, ' +
          'every route), exec (POOL_EXEC_TOKEN, executions and sessions) or read (POOL_READ_TOKEN, the GET ' +
          'routes of the admin API and ' +
          `metrics). Health routes are open; \`${metrics}\` needs a read or admin token unless ` +
          'POOL_METRICS_PUBLIC=true. Every error has one shape: `{ statusCode, error, code, message, field?, ' +
          'retryable, details? }`. A session belongs to the token that opened it: another token gets 404 for it.',
      )
      .setVersion(packageVersion())
      .addBearerAuth(
        {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'opaque',
          description: 'A token of POOL_ADMIN_TOKEN, POOL_EXEC_TOKEN or POOL_READ_TOKEN',
        },
        ADMIN_BEARER_SCHEME,
      )
      .build();
    return SwaggerModule.createDocument(app, config);
  };
  SwaggerModule.setup(path, app, document, {
    jsonDocumentUrl: `${path}-json`,
    useGlobalPrefix: options.useGlobalPrefix ?? false,
  });
  return true;
}
