import { existsSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { Admin } from '@platformatic/kafka';
import { brokerAnswers, freePort, startLocalKafka } from '../../src/broker/local-kafka.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local Kafka broker', () => {
  it('starts, serves admin requests, and stops cleanly', async () => {
    const kafka = await startLocalKafka({ port: await freePort(), controllerPort: await freePort() });
    try {
      expect(await brokerAnswers(kafka.brokers)).toBe(true);

      const admin = new Admin({ clientId: 'local-kafka-test', bootstrapBrokers: [kafka.brokers] });
      try {
        await admin.createTopics({ topics: ['local-kafka-test'], partitions: 3, replicas: 1 });
        expect(await admin.listTopics()).toContain('local-kafka-test');
        const metadata = await admin.metadata({ topics: ['local-kafka-test'], forceUpdate: true });
        expect(metadata.topics.get('local-kafka-test')?.partitionsCount).toBe(3);
      } finally {
        await admin.close();
      }
    } finally {
      await kafka.stop();
    }

    expect(await brokerAnswers(kafka.brokers, 1000)).toBe(false);
    expect(alive(kafka.pid)).toBe(false);
    expect(existsSync(kafka.dataDir)).toBe(false);
    await kafka.stop(); // idempotent
  }, 120_000);
});
