/**
 * The group-commit front alone, with the store played by the test: it holds each group sent and
 * commits it when the test says (both real ledgers run the same front under ledgerContract).
 */
import { describe, expect, it } from 'vitest';
import { GroupCommit, settleCall, type Group } from './groupCommit.ts';
import type { Done } from './types.ts';

type Call = { n: number; done: Done<string> };

function store(o: { maxGroup?: number; burstGroup?: number; maxInflight?: number } = {}) {
  const sent: Group<Call>[] = [];
  const fatal: Error[] = [];
  const front = new GroupCommit<Call>({
    maxGroup: o.maxGroup ?? 10, burstGroup: o.burstGroup, maxInflight: o.maxInflight,
    weight: (c) => c.n, send: (g) => sent.push(g), onFatal: (e) => fatal.push(e),
  });
  const answers: string[] = [];
  const call = (n: number, name: string, done?: Done<string>): Call =>
    ({ n, done: done ?? ((err, r) => answers.push(err ? `${name}:${err.message}` : `${name}:${r}`)) });
  /** Commits the group as the store would: every call answered with the group's id. */
  const commit = (g: Group<Call>) => front.settle(g.id, () => { for (const c of g.calls) settleCall(c.done, null, `g${g.id}`); });
  const turn = () => new Promise((r) => setImmediate(r));
  return { front, sent, fatal, answers, call, commit, turn };
}

describe('GroupCommit', () => {
  it('sends calls made during a commit together as the next group, whole calls up to maxGroup, in order', async () => {
    const s = store({ maxGroup: 10 });
    s.front.submit(s.call(1, 'a'));
    expect(s.sent).toHaveLength(0); // not before the next turn of the event loop
    await s.turn();
    expect(s.sent.map((g) => g.calls.length)).toEqual([1]);
    for (const [n, name] of [[4, 'b'], [5, 'c'], [3, 'd'], [20, 'e']] as const) s.front.submit(s.call(n, name));
    await s.turn();
    expect(s.sent).toHaveLength(1); // the store is busy: they wait
    expect(s.front.backlog).toBe(1 + 4 + 5 + 3 + 20);
    s.commit(s.sent[0]!);
    // The next group went out before the answers: b and c (9), not d (would make 12).
    expect(s.sent[1]!.calls.map((c) => c.n)).toEqual([4, 5]);
    expect(s.answers).toEqual(['a:g1']);
    s.commit(s.sent[1]!);
    expect(s.sent[2]!.calls.map((c) => c.n)).toEqual([3]);
    s.commit(s.sent[2]!);
    expect(s.sent[3]!.calls.map((c) => c.n)).toEqual([20]); // heavier than maxGroup: alone
    s.commit(s.sent[3]!);
    expect(s.answers).toEqual(['a:g1', 'b:g2', 'c:g2', 'd:g3', 'e:g4']);
    await s.front.drained();
    expect(s.front.backlog).toBe(0);
  });

  it('sends a burst at once, behind the group being committed, up to maxInflight groups', async () => {
    const s = store({ maxGroup: 100, burstGroup: 5, maxInflight: 2 });
    s.front.submit(s.call(5, 'a'));
    expect(s.sent).toHaveLength(1); // a burst goes without waiting for the next turn
    s.front.submit(s.call(5, 'b'));
    expect(s.sent).toHaveLength(2);
    s.front.submit(s.call(5, 'c'));
    s.front.submit(s.call(1, 'd'));
    expect(s.sent).toHaveLength(2); // two in flight: the rest waits
    s.commit(s.sent[0]!);
    expect(s.sent[2]!.calls.map((c) => c.n)).toEqual([5, 1]);
  });

  it('fails stop: calls in a group and waiting hear the error, later calls too, the owner once', async () => {
    const s = store({ maxGroup: 1 });
    s.front.submit(s.call(1, 'a'));
    s.front.submit(s.call(1, 'b'));
    await s.turn();
    s.front.fail(new Error('disk gone'));
    s.front.fail(new Error('again'));
    s.front.submit(s.call(1, 'c'));
    s.commit(s.sent[0]!); // a late answer for a failed group is ignored
    expect(s.answers).toEqual(['a:disk gone', 'b:disk gone', 'c:disk gone']);
    expect(s.fatal.map((e) => e.message)).toEqual(['disk gone']);
    await s.front.drained();
  });

  it('a send that throws fails the store', async () => {
    const answers: string[] = [];
    const front = new GroupCommit<Call>({ maxGroup: 10, weight: (c) => c.n, send: () => { throw new Error('evidence write failed'); } });
    front.submit({ n: 1, done: (err) => answers.push(err!.message) });
    await new Promise((r) => setImmediate(r));
    expect(answers).toEqual(['evidence write failed']);
    expect(front.failed?.message).toBe('evidence write failed');
  });

  it('close commits a call made while the last group commits, then refuses', async () => {
    const s = store();
    s.front.submit(s.call(1, 'a'));
    let done = false;
    const closed = s.front.close().then(() => { done = true; });
    await s.turn();
    s.commit(s.sent[0]!); // close's wait ends here; its continuation runs after this turn's calls
    s.front.submit(s.call(1, 'b'));
    await s.turn();
    expect(done).toBe(false); // b is on its way to the store, which the owner closes once close() resolves
    s.commit(s.sent[1]!);
    await closed;
    s.front.submit(s.call(1, 'c'));
    expect(s.answers).toEqual(['a:g1', 'b:g2', 'c:ledger is closed']);
  });

  it('close waits for what is queued, then refuses', async () => {
    const s = store();
    s.front.submit(s.call(1, 'a'));
    const closed = s.front.close();
    await s.turn();
    s.commit(s.sent[0]!);
    await closed;
    s.front.submit(s.call(1, 'b'));
    expect(s.answers).toEqual(['a:g1', 'b:ledger is closed']);
  });
});
