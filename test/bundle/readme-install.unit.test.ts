import * as fs from 'node:fs';
import * as path from 'node:path';
import { README_INSTALL } from '../../platform/in-cluster';

/**
 * The README's install section is exactly what test/node/operator-install.test.ts runs (it runs
 * README_INSTALL's argument lists with its own image, namespace and directory).
 */
const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
const sectionOf = (text: string) => text.slice(text.indexOf('## Installing'), text.indexOf('\n## ', text.indexOf('## Installing') + 1));
/** The commands of the first sh block of the install section, comments dropped. */
const commandsOf = (text: string) => (/```sh\n([\s\S]*?)```/.exec(sectionOf(text))?.[1] ?? '').split('\n')
  .map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && !l.startsWith('#'));
const section = sectionOf(readme);
const commands = commandsOf(readme);

test('the install commands are the ones the install test runs, in its order', () => {
  const image = 'ghcr.io/you/pipeline-sidecars:0.1.0';
  expect(commands).toEqual([
    `docker build -t ${image} . && docker push ${image}`,
    `./bin/pipeline-sidecars ${README_INSTALL.synth(image, 'ci', 'dist').join(' ')}`,
    `kubectl ${README_INSTALL.apply('dist').join(' ')}`,
    `kubectl ${README_INSTALL.rollout.join(' ')}`,
  ]);
});

test('the uninstall command is the one the install test runs', () => {
  expect(section).toContain(`**Uninstall**: \`kubectl ${README_INSTALL.uninstall('dist').join(' ')}\``);
});

test('negative control: the same check sees a README whose apply command differs', () => {
  const edited = readme.replace('kubectl apply --server-side -f dist/', 'kubectl apply -f dist/');
  expect(edited).not.toBe(readme);
  expect(commandsOf(edited)).not.toEqual(commands);
  expect(commandsOf(edited)).toContain('kubectl apply -f dist/');
});
