import { ClientEvent } from '@curbside/shared';
import type { EventClass } from './config.js';

/** Sends and every other event's class: a budget per device, per user and per organisation (security/config.ts). */
export const EVENT_CLASS: Partial<Record<string, EventClass | 'envelopeSend'>> = {
  [ClientEvent.ENVELOPE_SEND]: 'envelopeSend',
  [ClientEvent.CONVERSATION_CREATE]: 'membership',
  [ClientEvent.TEAM_CREATE]: 'membership',
  [ClientEvent.TEAM_CHANGE]: 'membership',
  [ClientEvent.CONVERSATION_LEAVE]: 'membership',
  [ClientEvent.TYPING]: 'typing',
  [ClientEvent.PRESENCE_QUERY]: 'presence',
  [ClientEvent.SYNC_FETCH]: 'sync',
  [ClientEvent.SYNC_ACK]: 'sync',
  [ClientEvent.CONVERSATION_LIST]: 'reads',
  [ClientEvent.CONVERSATION_GET]: 'reads',
  [ClientEvent.DEVICES_LIST]: 'reads',
  [ClientEvent.DEVICES_MINE]: 'reads',
  [ClientEvent.KEYS_COUNT]: 'reads',
  [ClientEvent.KEYS_PUBLISH]: 'reads',
  [ClientEvent.DEVICE_REVOKE]: 'reads',
  [ClientEvent.DEVICE_LIST_PUBLISH]: 'membership',
  [ClientEvent.DEVICE_LISTS]: 'reads',
  [ClientEvent.DIRECTORY_LOOKUP]: 'reads',
  [ClientEvent.DIRECTORY_SEARCH]: 'reads',
  [ClientEvent.ALERT_ACK]: 'reads',
  [ClientEvent.ALERT_LIST]: 'reads',
  [ClientEvent.ALERT_CONTENT]: 'reads',
  [ClientEvent.ROLE_SEARCH]: 'reads',
  [ClientEvent.CREDENTIALS_GET]: 'reads',
  [ClientEvent.CREDENTIALS_SEARCH]: 'reads',
  [ClientEvent.ROLE_LOG]: 'reads',
  [ClientEvent.ROLE_OPEN]: 'membership',
};
