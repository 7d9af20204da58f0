"""The Lua scripts of the relay across instances (relay_redis.py), and its key names.

Each script is one atomic step in Redis, so no message is stranded between two steps
(presence set while the held list is taken, a seat read while a message is held). A
presence value is `<instance id>|<socket generation>`; an instance id never holds `|`.
An instance counts as live while its heartbeat key exists AND something listens on its
channel (PUBLISH answers how many did): a killed process drops its Redis connection at
once, a hung one loses its heartbeat within the heartbeat TTL.

The scripts read the heartbeat key and publish to channels they are not given in KEYS:
one Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

from .session import Role


class Keys:
    """The names of everything the relay keeps in Redis, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def seat(self, token: str, role: Role) -> str:
        return f"{self.prefix}:seat:{token}:{role.value}"

    def held(self, token: str, role: Role) -> str:
        return f"{self.prefix}:held:{token}:{role.value}"

    def held_bytes(self, token: str, role: Role) -> str:
        return f"{self.prefix}:heldbytes:{token}:{role.value}"

    def alive(self, instance: str) -> str:
        return f"{self.prefix}:alive:{instance}"

    def instances(self) -> str:
        """A sorted set: each instance and the time (ms) of its latest heartbeat."""
        return f"{self.prefix}:instances"

    def channel(self, instance: str) -> str:
        return f"{self.prefix}:to:{instance}"


# KEYS: the peer's seat, its held list, its held byte count.
# ARGV: key prefix, this instance, the header of the published message, the text, held
# messages max, held bytes max, held TTL (s), and what to do when the seat is on this
# instance: "ask" returns 2 (the caller looks: a socket attaching here is given the
# message, none means it is going away), "hold" holds the message.
# Returns 1 published, 0 held, -1 refused (the held caps are reached), 2 (see "ask").
FORWARD = """
local seat = redis.call('GET', KEYS[1])
if seat then
  local instance = string.match(seat, '^(.*)|[0-9]+$')
  if instance == ARGV[2] and ARGV[8] == 'ask' then
    return 2
  end
  if instance ~= ARGV[2] then
    if instance and redis.call('EXISTS', ARGV[1] .. ':alive:' .. instance) == 1
        and redis.call('PUBLISH', ARGV[1] .. ':to:' .. instance, ARGV[3] .. ARGV[4]) > 0 then
      return 1
    end
    redis.call('DEL', KEYS[1])
  end
end
local size = tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) or size + #ARGV[4] > tonumber(ARGV[6]) then
  return -1
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('INCRBY', KEYS[3], #ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[7])
return 0
"""

# KEYS: the seat, its held list, its held byte count.
# ARGV: key prefix, the new presence value, presence TTL (s), the header of the
# `replaced` message (the old generation is appended).
# Takes the seat and the held messages in one step; tells the old socket's instance.
ATTACH = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if old and old ~= ARGV[2] then
  local instance, generation = string.match(old, '^(.*)|([0-9]+)$')
  if instance then
    redis.call('PUBLISH', ARGV[1] .. ':to:' .. instance, ARGV[4] .. generation)
  end
end
local held = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2], KEYS[3])
return held
"""

# KEYS: the seat. ARGV: the presence value. Frees the seat only if it is still ours.
DETACH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: the seat. ARGV: the presence value, presence TTL (s).
# Keeps our seat alive (or puts it back after Redis lost it); never takes another's.
REFRESH = """
local now = redis.call('GET', KEYS[1])
if not now or now == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: the host's seat, the guest's. ARGV: key prefix.
# Returns, per seat, the instance holding it while that instance lives, else false.
SEATS = """
local out = {}
for i = 1, 2 do
  out[i] = false
  local seat = redis.call('GET', KEYS[i])
  if seat then
    local instance = string.match(seat, '^(.*)|[0-9]+$')
    if instance and redis.call('EXISTS', ARGV[1] .. ':alive:' .. instance) == 1 then
      out[i] = instance
    end
  end
end
return out
"""

# KEYS: both seats, then both held lists and byte counts.
# ARGV: key prefix, this instance, the `ended` message.
# Tells every other instance holding a seat, then forgets the seats and held messages.
END = """
local told = {}
for i = 1, 2 do
  local seat = redis.call('GET', KEYS[i])
  if seat then
    local instance = string.match(seat, '^(.*)|[0-9]+$')
    if instance and instance ~= ARGV[2] and not told[instance] then
      told[instance] = true
      redis.call('PUBLISH', ARGV[1] .. ':to:' .. instance, ARGV[3])
    end
  end
end
redis.call('DEL', unpack(KEYS))
return 0
"""
