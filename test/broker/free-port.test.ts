import { describe, expect, it } from 'vitest';

import { freePort } from '../../src/broker/local-kafka.js';

describe('freePort', () => {
  it('given many calls in one process, when each probe is closed before the next, then no port is handed out twice', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    expect(ports.every((p) => p > 0 && p < 65536)).toBe(true);
  });
});
