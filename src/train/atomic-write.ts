// Writes a file so that its path holds either the old content or all of the new one.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes `bytes` to `path` so that `path` holds either its old content or all of the new one:
 * the data goes to `path.tmp-<pid>`, is flushed to disk, and only then renamed over `path`.
 */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const temporaryPath = `${path}.tmp-${process.pid}`;
  let renamed = false;
  try {
    const fd = openSync(temporaryPath, 'w');
    try {
      for (const chunk of chunks) {
        let written = 0;
        while (written < chunk.byteLength) {
          written += writeSync(fd, chunk, written, chunk.byteLength - written);
        }
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporaryPath, path);
    renamed = true;
    syncDirectory(dirname(path));
  } finally {
    if (!renamed) removeQuietly(temporaryPath);
  }
}

/** Makes the rename itself durable; some platforms cannot open a directory, which is harmless. */
function syncDirectory(directory: string): void {
  try {
    const fd = openSync(directory, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // The file content is already on disk; only the rename's durability is left to the OS.
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Nothing was there to clean up, or it is already gone.
  }
}
