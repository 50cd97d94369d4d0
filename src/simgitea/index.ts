export { SimGitea } from './sim.js';
export type { SimDeliveryRecord, SimFaults, SimGiteaOptions, SimStats, SimWebhookTarget } from './sim.js';
export { makeDelivery, goJson } from './webhooks.js';
export type { Delivery, DeliveryOptions } from './webhooks.js';
