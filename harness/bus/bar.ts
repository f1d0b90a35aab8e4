/**
 * A BAR as a bus sees it: an address and whether it is in IO space (as
 * libqos's QPCIBar), so that BAR access, lookup and mapping are written
 * once for memory and IO instead of in pairs.
 */
export type BusSpace = 'memory' | 'io';

export interface BarToken {
  addr: number;
  io: boolean;
}

/** The bus space a BAR (or a BAR kind: 'io' or any memory kind) decodes in. */
export const spaceOfBar = (b: { io: boolean }): BusSpace => (b.io ? 'io' : 'memory');
export const spaceOfKind = (kind: string): BusSpace => (kind === 'io' ? 'io' : 'memory');
