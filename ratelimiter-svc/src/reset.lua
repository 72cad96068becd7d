-- Reset a key: a new generation starts a fresh counter on every node at once, and the
-- current counter is deleted. KEYS[1] the key's config hash; ARGV[1] counter prefix,
-- ARGV[2] default window ms. Returns the new generation.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local cfg = redis.call('HMGET', KEYS[1], 'window_ms', 'generation')
local window_ms = tonumber(cfg[1]) or tonumber(ARGV[2])
local generation = tonumber(cfg[2]) or 0
redis.call('DEL', ARGV[1] .. generation .. ':' .. math.floor(now_ms / window_ms))
return redis.call('HINCRBY', KEYS[1], 'generation', 1)
