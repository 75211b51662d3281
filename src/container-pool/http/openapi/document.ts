import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type * as Swagger from '@nestjs/swagger';
import { ADMIN_BEARER_SCHEME, swaggerAvailable } from './swagger';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Serves the OpenAPI document of the app (every route of the pool's module included) at `/<path>` (Swagger UI)
 * and `/<path>-json`, with the admin bearer scheme declared. Returns false, serving nothing, when
 * @nestjs/swagger is not installed. Host apps with their own document only need
 * `.addBearerAuth({ type: 'http', scheme: 'bearer' }, ADMIN_BEARER_SCHEME)` on their DocumentBuilder.
 */
export function setupContainerPoolDocs(app: INestApplication, path = 'docs'): boolean {
  if (!swaggerAvailable) return false;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DocumentBuilder, SwaggerModule } = require('@nestjs/swagger') as typeof Swagger;
  const config = new DocumentBuilder()
    .setTitle('container-pool')
    .setDescription(
      'Warm pool of hardened Docker containers for running untrusted code. The admin API and POST ' +
        '/executions need "Authorization: Bearer <token>" with a token of POOL_ADMIN_TOKEN; health routes are ' +
        'open; /metrics needs the token unless POOL_METRICS_PUBLIC=true.',
    )
    .setVersion(packageVersion())
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'opaque',
        description: 'A token of POOL_ADMIN_TOKEN',
      },
      ADMIN_BEARER_SCHEME,
    )
    .build();
  SwaggerModule.setup(path, app, () => SwaggerModule.createDocument(app, config), {
    jsonDocumentUrl: `${path}-json`,
  });
  return true;
}
