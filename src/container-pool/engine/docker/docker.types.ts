/**
 * The dockerode types the public API exposes (`Container.dockerContainer`, the `docker` connection option),
 * named here so that nothing outside this folder imports dockerode.
 */
import type Dockerode from 'dockerode';

/** A dockerode Container: the handle of a pooled container on the Docker engine. */
export type DockerContainerHandle = Dockerode.Container;

/** dockerode's connection options (socketPath, host/port/protocol, TLS, ssh). */
export type DockerConnectionOptions = Dockerode.DockerOptions;
