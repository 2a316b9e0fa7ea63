/**
 * The built-in components, one registration line each. Importing this module (the topology
 * loader does) makes their types valid in a topology file.
 */
import { registry } from './topology/registry.js';
import { kafkaSource } from './sources/kafka/index.js';
import { kafkaSink } from './sinks/kafka/index.js';
import { websocketSink } from './sinks/websocket/index.js';

registry.source(kafkaSource);
registry.sink(kafkaSink);
registry.sink(websocketSink);
