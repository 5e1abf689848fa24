// Build step of the web app: tsc compiled web/*.ts into dist/web; this copies
// the static files beside them and MQTT.js's browser build as /vendor/mqtt.js.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(pkg, 'dist', 'web');
mkdirSync(path.join(out, 'vendor'), { recursive: true });
for (const name of readdirSync(path.join(pkg, 'web'))) {
  if (/\.(html|css|svg|png)$/.test(name)) copyFileSync(path.join(pkg, 'web', name), path.join(out, name));
}
const require = createRequire(import.meta.url);
copyFileSync(require.resolve('mqtt/dist/mqtt.esm'), path.join(out, 'vendor', 'mqtt.js'));
