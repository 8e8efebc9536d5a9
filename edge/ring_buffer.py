"""The runtime's recent history of device samples: preallocated, allocation-free.

Every sample is written twice, at ``i`` and ``i + capacity`` of arrays twice the
capacity long, so the newest ``k`` samples are always one contiguous slice in
chronological order: building a window needs no copy and no modular indexing.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    """The last ``capacity`` samples: time (s, device clock), joint angles (rad), seq.

    Timestamps must increase strictly; the caller drops or resets on anything else.
    """

    def __init__(self, capacity: int, n_joints: int = 3) -> None:
        if capacity < 2:
            raise ValueError(f"a sample ring needs a capacity of at least 2, got {capacity}")
        self.capacity = capacity
        self._t = np.zeros(2 * capacity)
        self._q = np.zeros((2 * capacity, n_joints))
        self._seq = np.zeros(2 * capacity, dtype=np.int64)
        self._next = 0
        self._count = 0
        self._newest = 0.0
        self._first = 0.0

    def __len__(self) -> int:
        return self._count

    @property
    def n_joints(self) -> int:
        return self._q.shape[1]

    def clear(self) -> None:
        """Forget every sample (after a gap longer than a window, or a reconnect)."""
        self._next = 0
        self._count = 0

    def push(self, seq: int, t_s: float, q: np.ndarray) -> None:
        """Append one sample; the oldest falls out when the ring is full."""
        i = self._next
        j = i + self.capacity
        self._t[i] = self._t[j] = t_s
        self._q[i] = q
        self._q[j] = q
        self._seq[i] = self._seq[j] = seq
        self._next = i + 1 if i + 1 < self.capacity else 0
        self._newest = t_s
        if self._count < self.capacity:
            if self._count == 0:
                self._first = t_s
            self._count += 1

    def _span(self, k: int) -> slice:
        if not 0 < k <= self._count:
            raise ValueError(f"asked for the newest {k} samples of a ring holding {self._count}")
        end = self._next + self.capacity if self._count == self.capacity else self._next
        return slice(end - k, end)

    def times(self, k: int | None = None) -> np.ndarray:
        """Timestamps (k,) in s of the newest ``k`` samples (all when None), oldest first."""
        return self._t[self._span(self._count if k is None else k)]

    def angles(self, k: int | None = None) -> np.ndarray:
        """Joint angles (k, n_joints) in rad of the newest ``k`` samples, oldest first."""
        return self._q[self._span(self._count if k is None else k)]

    def seqs(self, k: int | None = None) -> np.ndarray:
        """Device sequence numbers of the newest ``k`` samples, oldest first."""
        return self._seq[self._span(self._count if k is None else k)]

    @property
    def newest_time(self) -> float:
        if self._count == 0:
            raise ValueError("the sample ring is empty")
        return self._newest

    @property
    def oldest_time(self) -> float:
        if self._count < self.capacity:
            return self._first if self._count else self.newest_time
        return float(self._t[self._next])

    @property
    def span_s(self) -> float:
        """Seconds from the oldest sample held to the newest (0 when empty)."""
        return self._newest - self.oldest_time if self._count else 0.0
