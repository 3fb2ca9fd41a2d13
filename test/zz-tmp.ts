import { test } from 'node:test';
test('x', () => {});
void 0;
Promise.resolve(1);
