/*
 * A Nest 12 ESM host app of the packed container-pool (CommonJS, loaded through require(esm) of Nest 12),
 * booted by test/integration/consumer.int-spec.ts: runs code through the module on the real engine, calls its
 * routes and its OpenAPI document, closes, and prints one line `RESULT <json>` for the test to check.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ContainerPoolModule,
  setupContainerPoolDocs,
  type Container,
  type ContainerPoolModuleOptions,
} from 'container-pool';
import { ToolRunner } from './tools.js';

// The published types are real: with dockerode's types missing these were `any`.
type IsAny<T> = 0 extends 1 & T ? true : false;
const typed: [
  IsAny<Container['dockerContainer']>,
  IsAny<NonNullable<ContainerPoolModuleOptions['docker']>>,
] = [false, false];
if (typed.length > 2) {
  // @ts-expect-error size is a number
  ContainerPoolModule.forRoot({ size: 'four' });
}

const token = process.env.POOL_ADMIN_TOKEN ?? '';

@Module({
  imports: [
    ContainerPoolModule.forRoot({
      image: 'container-pool-sandbox:bookworm',
      pullPolicy: 'never',
      size: 1,
      name: process.env.POOL_NAME ?? 'test-consumer-nest12',
      adminToken: token,
      // A library host opts in to the module's routes.
      http: true,
    }),
  ],
  providers: [ToolRunner],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { bodyParser: false, logger: ['error', 'warn'] });
const docs = setupContainerPoolDocs(app, 'docs');
await app.listen(0, '127.0.0.1');
const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
const tools = app.get(ToolRunner);
const run = await tools.python('print(6*7)');
const steps = await tools.severalSteps();
const post = (body: unknown) =>
  fetch(`${base}/admin/pool/executions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
const valid = await post({ code: 'print(6*7)' });
const invalid = await post({ code: 'print(1)', timeoutMs: 'soon' });
const unknown = await post({ code: 'print(1)', shell: true });
const ready = await fetch(`${base}/health/ready`);
const openapi = (await (await fetch(`${base}/docs-json`)).json()) as {
  paths?: Record<string, unknown>;
};
const result = {
  nest: (
    JSON.parse(readFileSync('node_modules/@nestjs/core/package.json', 'utf8')) as {
      version: string;
    }
  ).version,
  typed,
  run: { exitCode: run.exitCode, stdout: run.stdout },
  steps,
  valid: { status: valid.status, body: (await valid.json()) as unknown },
  invalid: { status: invalid.status, body: (await invalid.json()) as unknown },
  unknown: { status: unknown.status, body: (await unknown.json()) as unknown },
  ready: ready.status,
  docs,
  openapiPaths: Object.keys(openapi.paths ?? {}),
};
await app.close();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
