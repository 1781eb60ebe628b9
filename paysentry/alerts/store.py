"""The storage primitives alert state is built on, and an in-memory implementation.

`AlertState` (state.py) writes every piece of state through this small interface. `RedisStore`
(redis_store.py) implements it on Redis with atomic commands and Lua, so several workers share state
and each scheduled item is claimed by one worker only. `MemoryKVStore` implements the same interface for
a single process (the embedded run); it ignores TTLs, which are only garbage collection here: every
decision about time compares timestamps stored in the values with an explicit `now`.
"""

from __future__ import annotations

import builtins
from typing import Protocol


class KVStore(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def mget(self, keys: list[str]) -> list[str | None]: ...
    async def set(self, key: str, value: str, *, ttl: float | None = None, nx: bool = False) -> bool: ...
    async def delete(self, *keys: str) -> int: ...
    async def incr(self, key: str, *, ttl: float | None = None) -> int: ...
    async def hset(self, key: str, field: str, value: str) -> None: ...
    async def hget(self, key: str, field: str) -> str | None: ...
    async def hgetall(self, key: str) -> dict[str, str]: ...
    async def hdel(self, key: str, *fields: str) -> int: ...
    async def hincrby(self, key: str, field: str, amount: int = 1) -> int: ...
    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int: ...
    async def smembers(self, key: str) -> builtins.set[str]: ...
    async def srem(self, key: str, *members: str) -> int: ...
    async def zadd(self, key: str, member: str, score: float, *, nx: bool = False) -> bool: ...
    async def zclaim(self, key: str, now: float, lease: float, limit: int = 100) -> list[str]:
        """Members with score <= now, each moved to now + lease in the same atomic step, so no other
        worker sees them as due until the lease runs out."""
        ...

    async def zrem(self, key: str, *members: str) -> int: ...
    async def zitems(self, key: str) -> list[tuple[str, float]]: ...
    async def zprune(self, key: str, max_score: float) -> int:
        """Remove members with score <= max_score."""
        ...

    async def rpush(self, key: str, value: str, *, ttl: float | None = None) -> int: ...
    async def lrange(self, key: str, start: int = 0, stop: int = -1) -> list[str]: ...
    async def lpush_capped(self, key: str, value: str, cap: int) -> None: ...
    async def drain(self, key: str) -> list[str]:
        """All items of a list, removing them in the same atomic step."""
        ...

    async def drop_if_empty(self, set_key: str, zkey: str, member: str, *other_keys: str) -> bool:
        """If the set at `set_key` is empty: remove `member` from `zkey` and delete `other_keys`, atomically."""
        ...

    async def close(self) -> None: ...


class MemoryKVStore:
    """KVStore in process memory, for one process and tests of pure logic."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.sets: dict[str, set[str]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.lists: dict[str, list[str]] = {}

    async def get(self, key: str) -> str | None:
        return self.strings.get(key)

    async def mget(self, keys: list[str]) -> list[str | None]:
        return [self.strings.get(k) for k in keys]

    async def set(self, key: str, value: str, *, ttl: float | None = None, nx: bool = False) -> bool:
        if nx and key in self.strings:
            return False
        self.strings[key] = value
        return True

    async def delete(self, *keys: str) -> int:
        count = 0
        for key in keys:
            for space in (self.strings, self.hashes, self.sets, self.zsets, self.lists):
                if key in space:
                    del space[key]
                    count += 1
        return count

    async def incr(self, key: str, *, ttl: float | None = None) -> int:
        value = int(self.strings.get(key, "0")) + 1
        self.strings[key] = str(value)
        return value

    async def hset(self, key: str, field: str, value: str) -> None:
        self.hashes.setdefault(key, {})[field] = value

    async def hget(self, key: str, field: str) -> str | None:
        return self.hashes.get(key, {}).get(field)

    async def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.hashes.get(key, {}))

    async def hdel(self, key: str, *fields: str) -> int:
        table = self.hashes.get(key, {})
        return sum(1 for f in fields if table.pop(f, None) is not None)

    async def hincrby(self, key: str, field: str, amount: int = 1) -> int:
        table = self.hashes.setdefault(key, {})
        table[field] = str(int(table.get(field, "0")) + amount)
        return int(table[field])

    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int:
        target = self.sets.setdefault(key, set())
        before = len(target)
        target.update(members)
        return len(target) - before

    async def smembers(self, key: str) -> builtins.set[str]:
        return set(self.sets.get(key, set()))

    async def srem(self, key: str, *members: str) -> int:
        target = self.sets.get(key, set())
        count = sum(1 for m in members if m in target)
        target.difference_update(members)
        return count

    async def zadd(self, key: str, member: str, score: float, *, nx: bool = False) -> bool:
        zset = self.zsets.setdefault(key, {})
        if nx and member in zset:
            return False
        zset[member] = score
        return True

    async def zclaim(self, key: str, now: float, lease: float, limit: int = 100) -> list[str]:
        zset = self.zsets.get(key, {})
        due = sorted((score, member) for member, score in zset.items() if score <= now)[:limit]
        for _, member in due:
            zset[member] = now + lease
        return [member for _, member in due]

    async def zrem(self, key: str, *members: str) -> int:
        zset = self.zsets.get(key, {})
        return sum(1 for m in members if zset.pop(m, None) is not None)

    async def zitems(self, key: str) -> list[tuple[str, float]]:
        return sorted(self.zsets.get(key, {}).items(), key=lambda kv: (kv[1], kv[0]))

    async def zprune(self, key: str, max_score: float) -> int:
        zset = self.zsets.get(key, {})
        old = [m for m, score in zset.items() if score <= max_score]
        for member in old:
            del zset[member]
        return len(old)

    async def rpush(self, key: str, value: str, *, ttl: float | None = None) -> int:
        items = self.lists.setdefault(key, [])
        items.append(value)
        return len(items)

    async def lrange(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        items = self.lists.get(key, [])
        return items[start:] if stop == -1 else items[start : stop + 1]

    async def lpush_capped(self, key: str, value: str, cap: int) -> None:
        items = self.lists.setdefault(key, [])
        items.insert(0, value)
        del items[cap:]

    async def drain(self, key: str) -> list[str]:
        return self.lists.pop(key, [])

    async def drop_if_empty(self, set_key: str, zkey: str, member: str, *other_keys: str) -> bool:
        if self.sets.get(set_key):
            return False
        self.sets.pop(set_key, None)
        await self.zrem(zkey, member)
        await self.delete(*other_keys)
        return True

    async def close(self) -> None:
        return None
