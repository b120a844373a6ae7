/**
 * `make(key)` remembered for keys that come again and again (a device's topics, its line-protocol
 * tags, a time zone's offset at a quarter hour): computed once per key, and forgotten all at once
 * when `limit` keys are held, so memory stays bounded whatever keys arrive. `make` must not return
 * undefined (null is fine: "no such thing" is remembered too).
 */
export function boundedMemo<K, V>(make: (key: K) => V, limit = 10_000): (key: K) => V {
  const memo = new Map<K, V>();
  return (key) => {
    let v = memo.get(key);
    if (v === undefined) {
      if (memo.size >= limit) memo.clear();
      memo.set(key, (v = make(key)));
    }
    return v;
  };
}
