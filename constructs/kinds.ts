import { BuildKitDaemonKind } from './buildkit-daemon';
import { ContainerKind } from './container-sidecar';
import { DockerDaemonKind } from './docker-daemon';
import { SidecarSpecError } from './errors';
import { SidecarKind } from './kind';
import { PostgresKind } from './postgres';
import { RegistryKind } from './registry';

export * from './kind';

/** The kinds an operator (or `render`) knows, by spec.kind. */
export class KindRegistry {
  private readonly kinds = new Map<string, SidecarKind<any>>();

  constructor(kinds: Array<SidecarKind<any>> = []) {
    for (const k of kinds) this.register(k);
  }

  /** Adds a kind; a second kind with the same name is a programming error. */
  register<O>(kind: SidecarKind<O>): this {
    if (this.kinds.has(kind.name)) throw new Error(`sidecar kind ${kind.name} is already registered`);
    this.kinds.set(kind.name, kind);
    return this;
  }

  /** The kind named `name`; throws SidecarSpecError listing the known kinds. */
  get(name: string, sidecarName?: string): SidecarKind<any> {
    const k = this.kinds.get(name);
    if (!k) {
      throw new SidecarSpecError('spec.kind',
        `unknown kind "${name}"; known kinds are ${this.names().join(', ')} (register your own with KindRegistry.register)`, sidecarName);
    }
    return k;
  }

  has(name: string): boolean {
    return this.kinds.has(name);
  }

  /** Registered kind names, sorted. */
  names(): string[] {
    return [...this.kinds.keys()].sort();
  }
}

/** A new registry with the built-in kinds: Container, DockerDaemon, BuildKitDaemon, Postgres, Registry. */
export function defaultKinds(): KindRegistry {
  return new KindRegistry([ContainerKind, DockerDaemonKind, BuildKitDaemonKind, PostgresKind, RegistryKind]);
}
