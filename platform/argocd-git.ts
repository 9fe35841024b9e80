import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A platform team's GitOps repository, on this machine: a git repository with one branch, `main`,
 * that Argo CD's repo server clones through a file:// URL (no git server, nothing on the network).
 * The test commits to it as the team would push. git runs with no configuration of this machine's
 * or of the user's (HOME points into the repository's own temp dir).
 */
export class GitRepo {
  private constructor(readonly root: string, readonly dir: string) {}

  /** A new repository with no commit yet. */
  static init(): GitRepo {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-gitops-'));
    const dir = path.join(root, 'ci-platform');
    fs.mkdirSync(path.join(root, 'home'));
    fs.mkdirSync(dir);
    const repo = new GitRepo(root, dir);
    repo.git(['init', '--quiet', '--initial-branch=main']);
    return repo;
  }

  /** The URL an Argo CD Application names. */
  get url(): string { return `file://${this.dir}`; }

  /** Replaces everything under `subdir` with `files` (relative name → content), commits, and returns the commit's SHA. */
  commit(subdir: string, files: Record<string, string>, message: string): string {
    const target = path.join(this.dir, subdir);
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(target, { recursive: true });
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(target, name), content);
    this.git(['add', '--all']);
    this.git(['commit', '--quiet', '--allow-empty', '-m', message]);
    return this.head();
  }

  head(): string { return this.git(['rev-parse', 'HEAD']).trim(); }

  /** The repository and its temp dir, gone. */
  remove(): void { fs.rmSync(this.root, { recursive: true, force: true }); }

  private git(args: string[]): string {
    const home = path.join(this.root, 'home');
    return execFileSync('git', args, {
      cwd: this.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 'Platform Team', GIT_AUTHOR_EMAIL: 'platform@example.invalid',
        GIT_COMMITTER_NAME: 'Platform Team', GIT_COMMITTER_EMAIL: 'platform@example.invalid',
      },
    });
  }
}
