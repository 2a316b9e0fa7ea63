// Exit 0 when the broker at $1 answers a metadata request, 1 otherwise. Used by stack.sh.
import kafkajs from 'kafkajs';
const broker = process.argv[2] ?? '127.0.0.1:9092';
const kafka = new kafkajs.Kafka({
  clientId: 'framewire-stack-probe',
  brokers: [broker],
  logLevel: kafkajs.logLevel.NOTHING,
  connectionTimeout: 1000,
  retry: { retries: 0 },
});
const admin = kafka.admin();
try {
  await admin.connect();
  await admin.describeCluster();
  await admin.disconnect();
  process.exit(0);
} catch {
  process.exit(1);
}
