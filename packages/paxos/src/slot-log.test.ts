import { encodeConfiguration, EntryType, EMPTY_CONFIGURATION } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { SlotLog } from './slot-log.js';

const cfg = (voters: string[]) => ({ voters, learners: [] as string[] });
const normal = (index: number, term = 1) => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index]) });
const config = (index: number, voters: string[], term = 1) => ({ index, term, type: EntryType.Config, data: encodeConfiguration(cfg(voters)) });

describe('SlotLog', () => {
  it('keeps gaps, replaces slots, and reports the last slot', () => {
    const log = new SlotLog(0, 0, EMPTY_CONFIGURATION);
    log.set(normal(1));
    log.set(normal(4));
    expect(log.lastIndex).toBe(4);
    expect(log.get(2)).toBeUndefined();
    expect(log.range(1, 4).map((e) => e.index)).toEqual([1, 4]);
    log.set(normal(4, 7));
    expect(log.termAt(4)).toBe(7);
  });

  it('a configuration at slot j governs the slots above j (stop-sign); replacing it removes it', () => {
    const log = new SlotLog(0, 0, cfg(['a']));
    log.set(config(3, ['a', 'b']));
    log.set(config(6, ['a', 'b', 'c']));
    expect(log.configAt(3).voters).toEqual(['a']);
    expect(log.configAt(4).voters).toEqual(['a', 'b']);
    expect(log.configAt(7).voters).toEqual(['a', 'b', 'c']);
    expect(log.newestConfig().voters).toEqual(['a', 'b', 'c']);
    expect(log.nextConfigSlot(4)).toBe(6);
    expect(log.configsAbove(3).map((c) => c.index)).toEqual([6]);
    log.set(normal(6, 2)); // a higher ballot re-proposed a no-config value there
    expect(log.newestConfig().voters).toEqual(['a', 'b']);
    expect(log.nextConfigSlot(4)).toBeUndefined();
  });

  it('compaction drops the prefix, keeps the governing configuration, and may reach past the end', () => {
    const log = new SlotLog(0, 0, cfg(['a']));
    log.set(config(2, ['a', 'b']));
    for (let i = 3; i <= 6; i++) log.set(normal(i));
    log.compact(4, 1);
    expect(log.snapshotIndex).toBe(4);
    expect(log.get(4)).toBeUndefined();
    expect(log.get(5)?.index).toBe(5);
    expect(log.configAt(5).voters).toEqual(['a', 'b']);
    log.compact(3, 1); // below: nothing
    expect(log.snapshotIndex).toBe(4);
    log.compact(10, 3, cfg(['z']));
    expect(log.lastIndex).toBe(10);
    expect(log.termAt(10)).toBe(3);
    expect(log.newestConfig().voters).toEqual(['z']);
    log.set(normal(12));
    expect(log.range(11, 12).map((e) => e.index)).toEqual([12]);
    expect(() => log.set(normal(10))).toThrow(RangeError);
  });
});
