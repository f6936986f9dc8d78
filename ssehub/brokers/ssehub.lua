#!lua name=ssehub
-- ssehub's Redis Functions. Every write to a channel's stream goes through
-- here, so the history, its floor and the notification change together,
-- atomically. Applications may call ssehub_publish directly:
--   FCALL ssehub_publish 1 ssehub:{news} "hello" [event-type]
-- The hub fills in the three settings below when it loads this.

local HISTORY_SIZE = __HISTORY_SIZE__
local MAX_EVENT_BYTES = __MAX_EVENT_BYTES__
-- Trim in steps, not on every publish; history holds this many more meanwhile.
local TRIM_SLACK = __TRIM_SLACK__
local MAX_EVENT_TYPE = 256

local function check_key(key)
  local channel = string.match(key or '', '^ssehub:{([%w_%-%.:@]+)}$')
  if not channel or #channel > 128 then
    return 'key must be ssehub:{channel}, the channel 1-128 of A-Z a-z 0-9 _ - . : @'
  end
end

-- A new stream's floor is its creation, so an id from a history that was
-- lost (a Redis restart without persistence) is seen to be older than it.
-- XTRIM does not move max-deleted-entry-id, so the floor is set explicitly.
local function ensure(key)
  if redis.call('EXISTS', key) == 0 then
    local id = redis.call('XADD', key, '*', 'd', '', 'e', '')
    redis.call('XTRIM', key, 'MAXLEN', 0)
    redis.call('XSETID', key, id, 'MAXDELETEDID', id)
  end
end

local function stream_bounds(key)
  local raw = redis.call('XINFO', 'STREAM', key)
  local fields = {}
  for i = 1, #raw, 2 do
    fields[raw[i]] = raw[i + 1]
  end
  return fields['last-generated-id'], fields['max-deleted-entry-id']
end

local function parse_id(id)
  local ms, seq = string.match(id or '', '^(%d+)%-(%d+)$')
  if ms then
    return tonumber(ms), tonumber(seq)
  end
end

local function id_le(a, b)
  local a_ms, a_seq = parse_id(a)
  local b_ms, b_seq = parse_id(b)
  return a_ms < b_ms or (a_ms == b_ms and a_seq <= b_seq)
end

local function publish(keys, args)
  local key, data, event = keys[1], args[1], args[2] or ''
  local bad_key = check_key(key)
  if bad_key then
    return redis.error_reply('ERR ' .. bad_key)
  end
  if data == nil then
    return redis.error_reply('ERR data is required: FCALL ssehub_publish 1 ssehub:{channel} data [event]')
  end
  if #data > MAX_EVENT_BYTES then
    return redis.error_reply('ERR data is over MAX_EVENT_BYTES=' .. MAX_EVENT_BYTES)
  end
  if #event > MAX_EVENT_TYPE or string.find(event, '[\r\n%z]') or string.sub(event, 1, 7) == 'ssehub.' then
    return redis.error_reply('ERR event must be at most 256 bytes, without CR, LF or NUL, not starting with ssehub.')
  end
  ensure(key)
  local id = redis.call('XADD', key, '*', 'd', data, 'e', event)
  local length = redis.call('XLEN', key)
  if length > HISTORY_SIZE + TRIM_SLACK then
    local dropped = redis.call('XRANGE', key, '-', '+', 'COUNT', length - HISTORY_SIZE)
    redis.call('XTRIM', key, 'MAXLEN', HISTORY_SIZE)
    redis.call('XSETID', key, id, 'MAXDELETEDID', dropped[#dropped][1])
  end
  redis.call('SPUBLISH', key, id .. '\n' .. event .. '\n' .. data)
  return id
end

local function head(keys)
  ensure(keys[1])
  local last = stream_bounds(keys[1])
  return last
end

-- Returns {exact, start, entries}: exact is 1 when `after` lies within the
-- retained history; otherwise the entries follow the floor.
local function replay(keys, args)
  local key, after, count = keys[1], args[1], tonumber(args[2])
  ensure(key)
  local last, floor = stream_bounds(key)
  local exact, start = 0, floor
  if parse_id(after) and id_le(floor, after) and id_le(after, last) then
    exact, start = 1, after
  end
  return {exact, start, redis.call('XRANGE', key, '(' .. start, '+', 'COUNT', count)}
end

redis.register_function('ssehub_publish', publish)
redis.register_function('ssehub_head', head)
redis.register_function('ssehub_replay', replay)
