/**
 * An ordered map of disjoint closed intervals [start, end] over safe integers,
 * kept in an AVL tree so that insert, remove and point lookup cost O(log n).
 * IOMMU mappings and emulator ranges live here: both may number in the
 * hundreds of thousands, and both forbid overlap by contract.
 */
interface Node<V> {
  start: number;
  end: number;
  value: V;
  left: Node<V> | null;
  right: Node<V> | null;
  height: number;
}

export interface Interval<V> {
  readonly start: number;
  readonly end: number;
  readonly value: V;
}

const h = (n: Node<unknown> | null): number => (n === null ? 0 : n.height);

function fix<V>(n: Node<V>): void {
  const l = h(n.left);
  const r = h(n.right);
  n.height = (l > r ? l : r) + 1;
}

function rotateRight<V>(n: Node<V>): Node<V> {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  fix(n);
  fix(l);
  return l;
}

function rotateLeft<V>(n: Node<V>): Node<V> {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  fix(n);
  fix(r);
  return r;
}

function balance<V>(n: Node<V>): Node<V> {
  fix(n);
  const bf = h(n.left) - h(n.right);
  if (bf > 1) {
    if (h(n.left!.left) < h(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (bf < -1) {
    if (h(n.right!.right) < h(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

export class IntervalMap<V> {
  private root: Node<V> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The interval that contains addr, or null. */
  find(addr: number): Interval<V> | null {
    let n = this.root;
    let best: Node<V> | null = null;
    while (n !== null) {
      if (n.start <= addr) {
        best = n;
        n = n.right;
      } else {
        n = n.left;
      }
    }
    return best !== null && best.end >= addr ? best : null;
  }

  /** True when some stored interval intersects [start, end]. */
  overlaps(start: number, end: number): boolean {
    let n = this.root;
    while (n !== null) {
      if (n.end < start) n = n.right;
      else if (n.start > end) n = n.left;
      else return true;
    }
    return false;
  }

  /** Inserts [start, end]; refuses (returns false) if it would overlap. */
  insert(start: number, end: number, value: V): boolean {
    if (end < start || this.overlaps(start, end)) return false;
    this.root = this.insertAt(this.root, { start, end, value, left: null, right: null, height: 1 });
    this.count++;
    return true;
  }

  private insertAt(n: Node<V> | null, x: Node<V>): Node<V> {
    if (n === null) return x;
    if (x.start < n.start) n.left = this.insertAt(n.left, x);
    else n.right = this.insertAt(n.right, x);
    return balance(n);
  }

  /** Removes the interval that starts exactly at start; returns it, or null. */
  remove(start: number): Interval<V> | null {
    let removed: Node<V> | null = null;
    const go = (n: Node<V> | null): Node<V> | null => {
      if (n === null) return null;
      if (start < n.start) n.left = go(n.left);
      else if (start > n.start) n.right = go(n.right);
      else {
        removed = n;
        if (n.left === null) return n.right;
        if (n.right === null) return n.left;
        // Replace by the in-order successor.
        let s = n.right;
        while (s.left !== null) s = s.left;
        const right = removeMin(n.right);
        s.left = n.left;
        s.right = right;
        return balance(s);
      }
      return balance(n);
    };
    this.root = go(this.root);
    if (removed !== null) this.count--;
    return removed;
  }

  /** Intervals that intersect [start, end], in address order. */
  intersecting(start: number, end: number): Interval<V>[] {
    const out: Interval<V>[] = [];
    const walk = (n: Node<V> | null): void => {
      if (n === null) return;
      if (n.start > start) walk(n.left);
      if (n.start <= end && n.end >= start) out.push(n);
      if (n.start <= end) walk(n.right);
    };
    walk(this.root);
    return out;
  }

  /** All intervals in address order. */
  entries(): Interval<V>[] {
    const out: Interval<V>[] = [];
    const walk = (n: Node<V> | null): void => {
      if (n === null) return;
      walk(n.left);
      out.push(n);
      walk(n.right);
    };
    walk(this.root);
    return out;
  }

  clear(): void {
    this.root = null;
    this.count = 0;
  }

  /** Height of the tree; exposed so tests can assert the balance bound. */
  get height(): number {
    return h(this.root);
  }
}

function removeMin<V>(n: Node<V>): Node<V> | null {
  if (n.left === null) return n.right;
  n.left = removeMin(n.left);
  return balance(n);
}
