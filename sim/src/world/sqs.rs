//! SQS and SNS in the simulated world (the parent module has the scheduler): a publish fanned out through
//! the subscriptions' filter policies, queues with visibility timeouts, batches received, what an
//! invocation handled deleted, dead-lettering after `maxReceiveCount`, and the operator's redrive.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use serde_json::Value;

use super::{InFlight, World};
use crate::{functions, template};

#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receive_count: u32,
    pub visible_at: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Queue {
    pub(super) messages: Vec<Message>,
    pub(super) visibility_ms: u64,
    pub(super) redrive: Option<(u32, String)>,
    /// The consumer: function, batch size, concurrency; and the invocations in flight.
    pub(super) consumer: Option<(String, usize, usize)>,
    pub(super) busy: usize,
}

impl World {
    /// Publishes to `topic` (a logical id): every subscribed queue whose filter passes gets a copy.
    pub fn publish(&mut self, topic: &str, body: &str, attributes: &BTreeMap<String, String>) {
        let body_json: Option<Value> = serde_json::from_str(body).ok();
        let targets: Vec<String> = self
            .topology
            .subscriptions
            .iter()
            .filter(|s| s.topic == topic)
            .filter(|s| {
                template::passes(s.filter.as_ref(), |key| {
                    if s.on_body {
                        body_json.as_ref().and_then(|b| b.get(key)).and_then(Value::as_str).map(str::to_owned)
                    } else {
                        attributes.get(key).cloned()
                    }
                })
            })
            .map(|s| s.queue.clone())
            .collect();
        for queue in targets {
            let copies = if self.rng.f64() < self.duplicate { 2 } else { 1 };
            self.counts.duplicates += copies - 1;
            for _ in 0..copies {
                self.enqueue(&queue, body.to_owned(), attributes.clone(), 0);
            }
        }
    }

    pub(super) fn enqueue(&mut self, queue: &str, body: String, attributes: BTreeMap<String, String>, delay_ms: u64) {
        self.next_id += 1;
        let (id, visible_at) = (self.next_id, self.now() + delay_ms);
        self.record(format!("{} send {queue} m{id}", self.now()));
        if let Some(q) = self.queues.get_mut(queue) {
            q.messages.push(Message { id, body, attributes, receive_count: 0, visible_at });
        }
    }

    pub(super) fn receive(&mut self, name: &str) {
        let now = self.now();
        let Some(queue) = self.queues.get_mut(name) else { return };
        let Some((function, batch_size, _)) = queue.consumer.clone() else { return };
        let mut records = Vec::new();
        let mut received = Vec::new();
        let mut to_dlq = Vec::new();
        for message in queue.messages.iter_mut().filter(|m| m.visible_at <= now) {
            if records.len() >= batch_size {
                break;
            }
            if let Some((max, _)) = &queue.redrive
                && message.receive_count >= *max
            {
                to_dlq.push(message.id);
                continue;
            }
            message.receive_count += 1;
            message.visible_at = now + queue.visibility_ms;
            received.push(message.id);
            records.push(sqs_record(name, message));
        }
        if let Some((_, dlq)) = queue.redrive.clone() {
            let moved: Vec<Message> = queue.messages.iter().filter(|m| to_dlq.contains(&m.id)).cloned().collect();
            queue.messages.retain(|m| !to_dlq.contains(&m.id));
            self.counts.dead_lettered += moved.len() as u64;
            for message in moved {
                self.record(format!("{now} dead-letter {name} m{}", message.id));
                if let Some(dlq) = self.queues.get_mut(&dlq) {
                    dlq.messages.push(Message { receive_count: 0, ..message });
                }
            }
        }
        if records.is_empty() {
            return;
        }
        self.counts.deliveries += records.len() as u64;
        let mut event = SqsEvent::default();
        event.records = records;
        let future = functions::invoke(&function, event, &self.ports, &self.command_queues);
        self.next_id += 1;
        let id = self.next_id;
        let orders: BTreeSet<&str> = self.queues[name]
            .messages
            .iter()
            .filter(|m| received.contains(&m.id))
            .filter_map(|m| m.attributes.get("orderId").map(String::as_str))
            .collect();
        let line = format!("{now} receive {name} inv{id} {received:?} {orders:?}");
        self.record(line);
        if let Some(queue) = self.queues.get_mut(name) {
            queue.busy += 1;
        }
        self.in_flight.insert(id, InFlight { future, queue: Some(name.to_owned()), received });
    }

    /// An invocation ended: the messages it handled are deleted, unless they failed (or it crashed).
    pub(super) fn finish(&mut self, invocation: &InFlight, failures: Option<Vec<String>>, crashed: bool) {
        let Some(name) = &invocation.queue else { return };
        let Some(queue) = self.queues.get_mut(name) else { return };
        queue.busy = queue.busy.saturating_sub(1);
        if crashed {
            return;
        }
        let Some(failures) = failures else { return };
        let keep: BTreeSet<u64> = failures.iter().filter_map(|f| f.strip_prefix('m')?.parse().ok()).collect();
        queue.messages.retain(|m| !invocation.received.contains(&m.id) || keep.contains(&m.id));
    }

    /// Every DLQ's messages back to their source queue (`nexus dlq redrive`).
    pub fn redrive_all(&mut self) -> usize {
        let sources: Vec<(String, String)> = self
            .queues
            .iter()
            .filter_map(|(name, q)| q.redrive.as_ref().map(|(_, dlq)| (name.clone(), dlq.clone())))
            .collect();
        let mut moved = 0;
        for (source, dlq) in sources {
            let messages = self.queues.get_mut(&dlq).map(|q| std::mem::take(&mut q.messages)).unwrap_or_default();
            moved += messages.len();
            for message in messages {
                self.enqueue(&source, message.body, message.attributes, 0);
            }
        }
        moved
    }
}

fn sqs_record(queue: &str, message: &Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m{}", message.id));
    record.body = Some(message.body.clone());
    record.event_source_arn = Some(queue.to_owned());
    record.attributes.insert("ApproximateReceiveCount".into(), message.receive_count.to_string());
    for (key, value) in &message.attributes {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.clone());
        attribute.data_type = Some("String".into());
        record.message_attributes.insert(key.clone(), attribute);
    }
    record
}
