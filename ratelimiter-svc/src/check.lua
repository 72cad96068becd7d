-- One fixed-window rate-limit check, atomic inside Redis.
-- KEYS[1]  the key's config hash (limit, window_ms, generation overrides)
-- KEYS[2]  the store epoch: created on first use, so a Redis that lost its data is told apart
-- ARGV[1]  the prefix of the key's counters
-- ARGV[2]  cost, ARGV[3] default limit, ARGV[4] default window in ms
-- The window comes from Redis's clock (TIME), never a node's, so nodes cannot skew it.
-- The counter name depends on the window, so it cannot be declared in KEYS: this script
-- targets a single Redis, not Redis Cluster.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = now[1] .. string.format('%06d', tonumber(now[2]))
  redis.call('SET', KEYS[2], epoch)
end
local cfg = redis.call('HMGET', KEYS[1], 'limit', 'window_ms', 'generation')
local limit = tonumber(cfg[1]) or tonumber(ARGV[3])
local window_ms = tonumber(cfg[2]) or tonumber(ARGV[4])
local generation = tonumber(cfg[3]) or 0
local window_id = math.floor(now_ms / window_ms)
local counter = ARGV[1] .. generation .. ':' .. window_id
local cost = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', counter) or '0')
local allowed = 0
-- Denied requests do not consume quota: the counter holds allowed units only.
if used + cost <= limit then
  used = redis.call('INCRBY', counter, cost)
  redis.call('PEXPIRE', counter, window_ms * 2)
  allowed = 1
end
return {allowed, limit, used, (window_id + 1) * window_ms, window_id, window_ms, generation, epoch, counter}
