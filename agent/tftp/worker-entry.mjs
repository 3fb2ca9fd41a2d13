// Worker threads do not inherit tsx's module hooks (neither bin/vaquero.mjs's in-process register()
// nor, on Node 20, `--import tsx`), so the worker registers tsx before loading its TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
