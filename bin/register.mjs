// Runs TypeScript sources without a build step: tsx, then a hook that drops
// the class-name blocks tsx adds (see strip-class-names.mjs for why).
// Use as `node --import ./bin/register.mjs file.ts`.
import { register } from 'node:module';
import { register as tsx } from 'tsx/esm/api';

tsx();
register('./strip-class-names.mjs', import.meta.url);
