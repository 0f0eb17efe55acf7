import { storageConformance } from './testing/storage-conformance.js';
import { MemoryStorage } from './memory-storage.js';

storageConformance('MemoryStorage', () => {
  const s = new MemoryStorage();
  return { open: () => s.reopen() };
});
