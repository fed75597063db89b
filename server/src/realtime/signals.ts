/**
 * Typing and presence: signals the hub relays but never stores, with the rules that keep them from
 * being a flood or a way to watch someone.
 */

/** Repeats of the same typing state from one device within this long are not fanned out again. */
const TYPING_COALESCE_MS = 2000;
const MAX_TYPING_STATES = 10_000;

/**
 * Typing fan-out coalesced per device and conversation: a client that sends "typing" on every
 * keystroke reaches the other members once per state change (or every 2 s), not once per key. 3,000
 * typing events once fanned out 120,000 pushes.
 */
export class TypingCoalescer {
  /** Last state fanned out per key, and when; the oldest go first past MAX_TYPING_STATES. */
  private readonly states = new Map<string, { typing: boolean; at: number }>();

  constructor(private readonly now: () => number) {}

  /** Whether `typing` repeats the state last fanned out under `key` lately (then nothing is sent). */
  repeats(key: string, typing: boolean): boolean {
    const now = this.now();
    const last = this.states.get(key);
    if (last && last.typing === typing && now - last.at < TYPING_COALESCE_MS) return true;
    this.states.delete(key);
    this.states.set(key, { typing, at: now });
    if (this.states.size > MAX_TYPING_STATES) this.states.delete(this.states.keys().next().value!);
    return false;
  }
}

/**
 * Whose presence a member may see in a conversation: their own; everyone's in a care team (its signed
 * log put them there); otherwise of those who accepted the conversation: its creator, and members who
 * have written in it. Anyone could open a direct conversation with anyone and poll when they are
 * online; now the person polled must have started it or answered.
 */
export function presenceVisible(conversation: { signed?: boolean | undefined; createdBy: string }, viewer: string, member: string, senders: ReadonlySet<string>): boolean {
  return member === viewer || conversation.signed === true || member === conversation.createdBy || senders.has(member);
}
