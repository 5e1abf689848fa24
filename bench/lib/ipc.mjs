// Waiting for one IPC message of a bench child.

/** Resolves with the next IPC message of `proc` whose `bench` field is `type`. */
export function nextMessage(proc, type, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message?.bench !== type) return;
      cleanup();
      resolve(message);
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`${proc.name} exited before sending "${type}"\n${proc.tail()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${proc.name}: no "${type}" message within ${timeoutMs} ms\n${proc.tail()}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
    };
    proc.child.on('message', onMessage);
    proc.child.on('exit', onExit);
  });
}
