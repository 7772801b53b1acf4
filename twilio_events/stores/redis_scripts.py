"""The Lua scripts of RedisStore: each change is one atomic script, however many processes share Redis.

The keys (P is the store's prefix):

    P:ids, P:leases     counters: event ids, and lease numbers (a new one for each claim)
    P:events            hash: id -> event JSON, for every event queued, delayed or held
    P:ready             list of ids ready to run, oldest first
    P:delayed           sorted set: id by the time (ms) a retry is due
    P:held              sorted set: id by the time (ms) its lease ends
    P:holders           hash: id -> "LEASE:CONSUMER", the claim that holds it
    P:dead, P:dead:events   dead letters: sorted set by time of death (µs), hash id -> event JSON
    P:key:KEY           "queued" while an event with idempotency key KEY is live, then "handled" (expiring)
    P:mark:SID          hash: the furthest status handled for SID (expiring)
    P:sid:SID           the token of the process checking and running SID's statuses now (expiring)
    P:expiries          hash: consumer -> how many of its events were taken over after their lease ran out

Times come from Redis's clock (TIME), the same for every process however far their clocks drift.
"""

from __future__ import annotations

NOW = """
local now = redis.call('TIME')
local now_us = now[1] * 1000000 + now[2]
local now_ms = math.floor(now_us / 1000)
"""

# Give up the hold of a claim (KEYS[2] held, KEYS[3] holders): false when that claim no longer holds `id`.
TAKE = """
local function take(id, lease, consumer)
    if redis.call('HGET', KEYS[3], id) ~= lease .. ':' .. consumer then return false end
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[2], id)
    return true
end
"""

ADVANCE = """
local function advance(key, status, rank, seq, final, window)
    local current = redis.call('HMGET', key, 'final', 'rank', 'seq')
    if current[1] then
        local old_rank, old_seq = tonumber(current[2]), tonumber(current[3])
        local new_rank, new_seq = tonumber(rank), tonumber(seq)
        if current[1] == '1' or new_rank < old_rank or (new_rank == old_rank and new_seq <= old_seq) then
            return 0
        end
    end
    redis.call('HSET', key, 'status', status, 'rank', rank, 'seq', seq, 'final', final)
    redis.call('PEXPIRE', key, window)
    return 1
end
"""

# KEYS: events, ready, ids, then the marker of each event. ARGV: each event's JSON. Returns 1/0 each.
ENQUEUE = """
local added = {}
for i = 1, #ARGV do
    added[i] = 0
    if redis.call('SET', KEYS[3 + i], 'queued', 'NX') then
        local id = redis.call('INCR', KEYS[3])
        redis.call('HSET', KEYS[1], id, ARGV[i])
        redis.call('RPUSH', KEYS[2], id)
        added[i] = 1
    end
end
return added
"""

# KEYS: events, ready, delayed, held, holders, leases, expiries. ARGV: consumer, limit, lease (ms).
# Returns {id, event, lease} for each event claimed: first those whose lease ran out (counted against the
# consumer that held them), then the oldest ready.
CLAIM = (
    NOW
    + """
local limit = tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('RPUSH', KEYS[2], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
    local holder = redis.call('HGET', KEYS[5], id)
    if holder then
        local separator = string.find(holder, ':', 1, true)
        redis.call('HINCRBY', KEYS[7], string.sub(holder, separator + 1), 1)
    end
end
if #ids < limit then
    local ready = redis.call('LPOP', KEYS[2], limit - #ids)
    if ready then
        for _, id in ipairs(ready) do table.insert(ids, id) end
    end
end
local claimed = {}
for _, id in ipairs(ids) do
    local event = redis.call('HGET', KEYS[1], id)
    if event then
        local lease = redis.call('INCR', KEYS[6])
        redis.call('ZADD', KEYS[4], now_ms + tonumber(ARGV[3]), id)
        redis.call('HSET', KEYS[5], id, lease .. ':' .. ARGV[1])
        table.insert(claimed, {id, event, lease})
    else
        redis.call('ZREM', KEYS[4], id)
        redis.call('HDEL', KEYS[5], id)
    end
end
return claimed
"""
)

# KEYS: held, holders. ARGV: consumer, lease (ms), then id and lease number of each event.
# Returns the ids no longer held by those claims.
EXTEND = (
    NOW
    + """
local lost = {}
for i = 3, #ARGV, 2 do
    if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] .. ':' .. ARGV[1] then
        redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[i])
    else
        table.insert(lost, ARGV[i])
    end
end
return lost
"""
)

# KEYS: events, held, holders, then each event's marker and status mark. ARGV, 9 per event: id, lease,
# consumer, window (ms), 1 when there is a status to record (else 0), status, rank, seq, final (1 or 0).
# Returns 1 for each event completed, 0 for each its claim no longer held (nothing recorded for it).
COMPLETE = (
    TAKE
    + ADVANCE
    + """
local done = {}
for i = 1, (#KEYS - 3) / 2 do
    local a = (i - 1) * 9
    done[i] = 0
    if take(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]) then
        redis.call('HDEL', KEYS[1], ARGV[a + 1])
        redis.call('SET', KEYS[2 + 2 * i], 'handled', 'PX', ARGV[a + 4])
        if ARGV[a + 5] == '1' then
            advance(KEYS[3 + 2 * i], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 4])
        end
        done[i] = 1
    end
end
return done
"""
)

# KEYS: events, held, holders, delayed. ARGV: id, lease, consumer, event, delay (ms).
RETRY_LATER = (
    TAKE
    + NOW
    + """
if not take(ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[4], now_ms + tonumber(ARGV[5]), ARGV[1])
return 1
"""
)

# KEYS: events, held, holders, dead, dead events, marker. ARGV: id, lease, consumer, event.
DEAD_LETTER = (
    TAKE
    + NOW
    + """
if not take(ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[4], now_us, ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
if redis.call('GET', KEYS[6]) == 'queued' then redis.call('DEL', KEYS[6]) end
return 1
"""
)

# KEYS: events, ready, held, holders. ARGV: consumer. Makes ready again what `consumer` holds.
RECOVER = """
local recovered = 0
local holders = redis.call('HGETALL', KEYS[4])
for i = 1, #holders, 2 do
    local separator = string.find(holders[i + 1], ':', 1, true)
    if separator and string.sub(holders[i + 1], separator + 1) == ARGV[1] then
        redis.call('HDEL', KEYS[4], holders[i])
        redis.call('ZREM', KEYS[3], holders[i])
        redis.call('LPUSH', KEYS[2], holders[i])
        recovered = recovered + 1
    end
end
return recovered
"""

# KEYS: events, ready, dead, dead events, marker. ARGV: id, event.
# A dead letter whose key was accepted again stays dead: the newer event runs instead.
RETRY_DEAD = """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 or redis.call('GET', KEYS[5]) == 'queued' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], 'queued')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""

# KEYS: dead, dead events.
PURGE_DEAD = """
local count = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return count
"""

# KEYS: mark. ARGV: status, rank, seq, final (1 or 0), window (ms).
ADVANCE_STATUS = ADVANCE + "return advance(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"

# KEYS: the status mark of each SID. Returns {status, rank, seq, final} for each (nil fields: none).
LAST_STATUSES = """
local marks = {}
for i, key in ipairs(KEYS) do marks[i] = redis.call('HMGET', key, 'status', 'rank', 'seq', 'final') end
return marks
"""

# KEYS: stream, entries, delayed events (the layout before leases), events, ready.
# Moves what a store of that layout kept into this one: every event in the stream becomes ready (those
# being run too: at least once), delayed ones keep their due time. Returns how many were moved.
MIGRATE = """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local moved = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local fields = {}
    for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
    if fields['id'] and fields['event'] then
        redis.call('HSET', KEYS[4], fields['id'], fields['event'])
        redis.call('RPUSH', KEYS[5], fields['id'])
        moved = moved + 1
    end
end
local delayed = redis.call('HGETALL', KEYS[3])
for i = 1, #delayed, 2 do
    redis.call('HSET', KEYS[4], delayed[i], delayed[i + 1])
    moved = moved + 1
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return moved
"""

# KEYS: the hold and the status mark of each SID. ARGV, 2 per SID: token, lease (ms).
# Returns {1 when held by that token now (else 0), status, rank, seq, final} for each SID.
CLAIM_SIDS = """
local answers = {}
for i = 1, #KEYS / 2 do
    local hold, token = KEYS[2 * i - 1], ARGV[2 * i - 1]
    local held = 0
    if redis.call('SET', hold, token, 'NX', 'PX', ARGV[2 * i]) then
        held = 1
    elseif redis.call('GET', hold) == token then
        redis.call('PEXPIRE', hold, ARGV[2 * i])
        held = 1
    end
    local mark = redis.call('HMGET', KEYS[2 * i], 'status', 'rank', 'seq', 'final')
    answers[i] = {held, mark[1], mark[2], mark[3], mark[4]}
end
return answers
"""

# KEYS: a SID's hold. ARGV: token, lease (ms). Returns 1 when extended, 0 when that token lost the hold.
EXTEND_SID = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the hold and the status mark of each SID. ARGV, 7 per SID: token, 1 when there is a status to
# record (else 0), status, rank, seq, final, window (ms). Records each mark, then gives up each hold.
RELEASE_SIDS = (
    ADVANCE
    + """
for i = 1, #KEYS / 2 do
    local a = (i - 1) * 7
    if ARGV[a + 2] == '1' then
        advance(KEYS[2 * i], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7])
    end
    if redis.call('GET', KEYS[2 * i - 1]) == ARGV[a + 1] then redis.call('DEL', KEYS[2 * i - 1]) end
end
return #KEYS / 2
"""
)

SCRIPTS = {
    "enqueue": ENQUEUE,
    "claim": CLAIM,
    "extend": EXTEND,
    "complete": COMPLETE,
    "retry_later": RETRY_LATER,
    "dead_letter": DEAD_LETTER,
    "recover": RECOVER,
    "retry_dead": RETRY_DEAD,
    "purge_dead": PURGE_DEAD,
    "advance_status": ADVANCE_STATUS,
    "last_statuses": LAST_STATUSES,
    "migrate": MIGRATE,
    "claim_sids": CLAIM_SIDS,
    "extend_sid": EXTEND_SID,
    "release_sids": RELEASE_SIDS,
}
