-- Read a key's limit, current window and counter at Redis's clock, without changing anything.
-- KEYS[1] the key's config hash; ARGV[1] counter prefix, ARGV[2] default limit, ARGV[3] default window ms.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local cfg = redis.call('HMGET', KEYS[1], 'limit', 'window_ms', 'generation')
local overridden = 0
if cfg[1] then overridden = 1 end
local limit = tonumber(cfg[1]) or tonumber(ARGV[2])
local window_ms = tonumber(cfg[2]) or tonumber(ARGV[3])
local generation = tonumber(cfg[3]) or 0
local window_id = math.floor(now_ms / window_ms)
local counter = ARGV[1] .. generation .. ':' .. window_id
local used = tonumber(redis.call('GET', counter) or '0')
local reset_at_ms = (window_id + 1) * window_ms
return {limit, window_ms, overridden, generation, window_id, used, redis.call('PTTL', counter), reset_at_ms, counter, reset_at_ms - now_ms}
