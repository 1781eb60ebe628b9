"""KVStore on Redis (redis.asyncio). Every key gets `prefix`; claims and conditional deletes are Lua
scripts, so they are atomic across workers."""

from __future__ import annotations

import builtins
from typing import Any

import redis.asyncio as aioredis

_ZCLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
"""

_DROP_IF_EMPTY = """
if redis.call('SCARD', KEYS[1]) > 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
end
return 1
"""

_INCR = """
local value = redis.call('INCR', KEYS[1])
if value == 1 and tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
"""

_DRAIN = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
"""


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(int(ttl * 1000), 1)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _texts(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class RedisStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "paysentry:alerts:"):
        self.client = client
        self.prefix = prefix
        self._zclaim = client.register_script(_ZCLAIM)
        self._drop_if_empty = client.register_script(_DROP_IF_EMPTY)
        self._drain = client.register_script(_DRAIN)
        self._incr = client.register_script(_INCR)

    @classmethod
    def from_url(cls, url: str, prefix: str = "paysentry:alerts:", **kwargs: Any) -> RedisStore:
        client = aioredis.Redis.from_url(url, decode_responses=True, **kwargs)
        return cls(client, prefix)

    def k(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> str | None:
        return _text(await self.client.get(self.k(key)))

    async def mget(self, keys: list[str]) -> list[str | None]:
        if not keys:
            return []
        return [_text(v) for v in await self.client.mget([self.k(k) for k in keys])]

    async def set(self, key: str, value: str, *, ttl: float | None = None, nx: bool = False) -> bool:
        return bool(await self.client.set(self.k(key), value, px=_ms(ttl), nx=nx))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self.client.delete(*(self.k(k) for k in keys)))

    async def incr(self, key: str, *, ttl: float | None = None) -> int:
        return int(await self._incr(keys=[self.k(key)], args=[_ms(ttl) or 0]))

    async def hset(self, key: str, field: str, value: str) -> None:
        await self.client.hset(self.k(key), field, value)

    async def hget(self, key: str, field: str) -> str | None:
        return _text(await self.client.hget(self.k(key), field))

    async def hgetall(self, key: str) -> dict[str, str]:
        raw = await self.client.hgetall(self.k(key))
        return {str(_text(k)): str(_text(v)) for k, v in raw.items()}

    async def hdel(self, key: str, *fields: str) -> int:
        if not fields:
            return 0
        return int(await self.client.hdel(self.k(key), *fields))

    async def hincrby(self, key: str, field: str, amount: int = 1) -> int:
        return int(await self.client.hincrby(self.k(key), field, amount))

    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(self.k(key), *members)
            if ttl is not None:
                pipe.pexpire(self.k(key), _ms(ttl) or 1)
            result = await pipe.execute()
        return int(result[0])

    async def smembers(self, key: str) -> builtins.set[str]:
        return set(_texts(await self.client.smembers(self.k(key))))

    async def srem(self, key: str, *members: str) -> int:
        if not members:
            return 0
        return int(await self.client.srem(self.k(key), *members))

    async def zadd(self, key: str, member: str, score: float, *, nx: bool = False) -> bool:
        return bool(await self.client.zadd(self.k(key), {member: score}, nx=nx))

    async def zclaim(self, key: str, now: float, lease: float, limit: int = 100) -> list[str]:
        result = await self._zclaim(keys=[self.k(key)], args=[repr(now), repr(now + lease), limit])
        return list(result)

    async def zrem(self, key: str, *members: str) -> int:
        if not members:
            return 0
        return int(await self.client.zrem(self.k(key), *members))

    async def zitems(self, key: str) -> list[tuple[str, float]]:
        items: Any = await self.client.zrange(self.k(key), 0, -1, withscores=True)
        return [(str(_text(member)), float(score)) for member, score in items]

    async def zprune(self, key: str, max_score: float) -> int:
        return int(await self.client.zremrangebyscore(self.k(key), "-inf", max_score))

    async def rpush(self, key: str, value: str, *, ttl: float | None = None) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(self.k(key), value)
            if ttl is not None:
                pipe.pexpire(self.k(key), _ms(ttl) or 1)
            result = await pipe.execute()
        return int(result[0])

    async def lrange(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        return _texts(await self.client.lrange(self.k(key), start, stop))

    async def lpush_capped(self, key: str, value: str, cap: int) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(self.k(key), value)
            pipe.ltrim(self.k(key), 0, cap - 1)
            await pipe.execute()

    async def drain(self, key: str) -> list[str]:
        return list(await self._drain(keys=[self.k(key)]))

    async def drop_if_empty(self, set_key: str, zkey: str, member: str, *other_keys: str) -> bool:
        keys = [self.k(set_key), self.k(zkey), *(self.k(k) for k in other_keys)]
        return bool(await self._drop_if_empty(keys=keys, args=[member]))

    async def close(self) -> None:
        await self.client.aclose()
