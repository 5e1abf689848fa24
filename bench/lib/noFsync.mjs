// Preloaded into `fso-audit record` for the "no fsync" side of the recorder
// scenario (`node --import noFsync.mjs …`): fsync and fdatasync become no-ops,
// everything else is the real recorder. Never used outside the benchmark.
import fs from 'node:fs';
import { open } from 'node:fs/promises';

const probe = await open(process.execPath, 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
FileHandle.sync = async function sync() {};
FileHandle.datasync = async function datasync() {};
fs.fsync = (_fd, callback) => process.nextTick(callback, null);
fs.fdatasync = (_fd, callback) => process.nextTick(callback, null);
fs.fsyncSync = () => undefined;
fs.fdatasyncSync = () => undefined;
