#!lua name=ssehub
-- ssehub's Redis Functions. Every write to a channel's stream goes through
-- here, so the history, its floor and the notification change together,
-- atomically. Applications may call ssehub_publish directly:
--   FCALL ssehub_publish 1 ssehub:{news} "hello" [event-type [history-size [max-event-bytes [notify
--         [idempotency-key [fingerprint]]]]]]
-- (with a key, the hub declares its record as a second key, ssehub:{news}:idempotency:<sha1 of the key>,
-- so a cluster migrating the slot answers TRYAGAIN rather than split the two)
-- With notify 0 it does not announce the event and returns {id, previous id}:
-- the hub announces it only once its replicas hold it (issue 13, item 3).
-- With notify 2 it announces the event and returns {id, previous id} too.
-- With an idempotency key (issue 14, item 3) a publish is stored once: for
-- IDEMPOTENCY_SECONDS the same key returns the first publish's id (with
-- notify 0 or 2: {id, ''}, which tells a repeat) without storing or
-- announcing anything (with notify 0 the hub announces it again: its first
-- publish may have been answered before it was), and the same key with
-- another fingerprint (by default a hash of the event type and data) is an error.
-- Loaded as shipped (redis-cli -x FUNCTION LOAD REPLACE < ssehub.lua): the
-- settings travel with each publish, so hubs with different HISTORY_SIZE
-- never trim each other's channels (issue 13, item 5). Without them, the
-- defaults below, which are the hub's.

local DEFAULT_HISTORY_SIZE = 1000
local DEFAULT_MAX_EVENT_BYTES = 65536
local MAX_SETTING = 16777216  -- 2^24: above the highest HISTORY_SIZE and MAX_EVENT_BYTES
local MAX_EVENT_TYPE = 256
local IDEMPOTENCY_SECONDS = 900
local MAX_IDEMPOTENCY_KEY = 255
-- Where a client stands on a channel that has no stream (nothing published yet).
local NOTHING_YET = '0-0'
-- Entries read per XRANGE while filling a replay page up to its byte budget.
local READ_BATCH = 64
-- A new stream's floor has a sequence of (microsecond + 1) * 2^40; no event
-- id has one (see create).
local FLOOR_STEP = 2 ^ 40

local function check_key(key)
  local channel = string.match(key or '', '^ssehub:{([%w_%-%.:@]+)}$')
  if not channel or #channel > 128 then
    return 'key must be ssehub:{channel}, the channel 1-128 of A-Z a-z 0-9 _ - . : @'
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

-- A new stream starts at a floor above every id its lost predecessor (DEL,
-- FLUSHALL, eviction, a restart without persistence) can have handed out, so
-- those ids are seen as older than the history and never resume into it
-- (issue 8, item 4). Ids follow the clock; a floor's sequence is (microsecond
-- + 1) * 2^40 and events count up from it, or from 0 in later milliseconds,
-- far fewer than 2^40 a millisecond: every id of a stream created in an
-- earlier microsecond is below this floor.
local function create(key)
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local floor_id = string.format('%.0f-%.0f', ms, (tonumber(now[2]) % 1000 + 1) * FLOOR_STEP)
  redis.call('XADD', key, floor_id, 'd', '', 'e', '')
  redis.call('XTRIM', key, 'MAXLEN', 0)
  -- XTRIM does not move max-deleted-entry-id, so the floor is set explicitly.
  redis.call('XSETID', key, floor_id, 'MAXDELETEDID', floor_id)
end

-- A whole number from 1 to MAX_SETTING, or nil.
local function setting(raw, default)
  if raw == nil or raw == '' then
    return default
  end
  local value = tonumber(raw)
  if value and value == math.floor(value) and value >= 1 and value <= MAX_SETTING then
    return value
  end
end

-- In the stream's slot, so the check and the append are one atomic step on any cluster.
local function idempotency_record(key, idempotency_key)
  return key .. ':idempotency:' .. redis.sha1hex(idempotency_key)
end

local function publish(keys, args)
  local key, data, event = keys[1], args[1], args[2] or ''
  local history_size = setting(args[3], DEFAULT_HISTORY_SIZE)
  local max_event_bytes = setting(args[4], DEFAULT_MAX_EVENT_BYTES)
  local notify = args[5] ~= '0'
  local with_previous = args[5] == '0' or args[5] == '2'
  if not (history_size and max_event_bytes) then
    return redis.error_reply('ERR history-size and max-event-bytes must be whole numbers from 1 to ' .. MAX_SETTING)
  end
  local bad_key = check_key(key)
  if bad_key then
    return redis.error_reply('ERR ' .. bad_key)
  end
  if data == nil then
    return redis.error_reply('ERR data is required: FCALL ssehub_publish 1 ssehub:{channel} data [event]')
  end
  if #data > max_event_bytes then
    return redis.error_reply('ERR data is over MAX_EVENT_BYTES=' .. max_event_bytes)
  end
  if #event > MAX_EVENT_TYPE or string.find(event, '[\r\n%z]') or string.sub(event, 1, 7) == 'ssehub.' then
    return redis.error_reply('ERR event must be at most 256 bytes, without CR, LF or NUL, not starting with ssehub.')
  end
  local idempotency_key, fingerprint = args[6] or '', args[7] or ''
  local record
  if idempotency_key ~= '' then
    if #idempotency_key > MAX_IDEMPOTENCY_KEY then
      return redis.error_reply('ERR idempotency-key must be at most ' .. MAX_IDEMPOTENCY_KEY .. ' bytes')
    end
    if fingerprint == '' then
      fingerprint = redis.sha1hex(event .. '\n' .. data)
    end
    record = idempotency_record(key, idempotency_key)
    if keys[2] and keys[2] ~= record then
      return redis.error_reply('ERR the second key must be ' .. record)
    end
    for _, command in ipairs({'get', 'set'}) do
      if not redis.acl_check_cmd(command, record, '') then
        return redis.error_reply('NOPERM this user may not ' .. command .. ' ' .. record .. ': give it +get +set')
      end
    end
    local seen = redis.call('GET', record)
    if seen then
      local seen_fingerprint, seen_id = string.match(seen, '^(%S+) (%S+)$')
      if seen_fingerprint ~= fingerprint then
        return redis.error_reply('IDEMPOTENCY this idempotency key was used for another publish in the last '
          .. IDEMPOTENCY_SECONDS .. ' s')
      end
      -- A write, so that a WAIT after this call on a connection that made no
      -- other (WAIT counts the connection's own writes) also covers the first
      -- publish, which may not have reached the replicas yet.
      redis.call('SET', record, seen, 'KEEPTTL')
      if with_previous then
        return {seen_id, ''}
      end
      return seen_id
    end
  end
  -- The id before this one, as a listener that saw everything holds it: a
  -- mismatch tells it at once of a gap or a lost history.
  local previous = NOTHING_YET
  if redis.call('EXISTS', key) == 0 then
    create(key)
  else
    previous = stream_bounds(key)
  end
  local id = redis.call('XADD', key, '*', 'd', data, 'e', event)
  local length = redis.call('XLEN', key)
  -- Trim in steps, not on every publish; history holds up to 10% more meanwhile.
  if length > history_size + math.max(1, math.floor(history_size / 10)) then
    local dropped = redis.call('XRANGE', key, '-', '+', 'COUNT', length - history_size)
    redis.call('XTRIM', key, 'MAXLEN', history_size)
    redis.call('XSETID', key, id, 'MAXDELETEDID', dropped[#dropped][1])
  end
  if record then
    redis.call('SET', record, fingerprint .. ' ' .. id, 'EX', IDEMPOTENCY_SECONDS)
  end
  if not notify then
    return {id, previous}
  end
  redis.call('SPUBLISH', key, id .. '\n' .. previous .. '\n' .. event .. '\n' .. data)
  if with_previous then
    return {id, previous}
  end
  return id
end

local function head(keys)
  if redis.call('EXISTS', keys[1]) == 0 then
    return NOTHING_YET
  end
  local last = stream_bounds(keys[1])
  return last
end

local function is_creation_floor(id)
  local _, seq = parse_id(id)
  return seq >= FLOOR_STEP and seq % FLOOR_STEP == 0
end

local function entry_bytes(entry)
  local size = #entry[1]
  for _, value in ipairs(entry[2]) do
    size = size + #value
  end
  return size
end

-- Returns {exact, start, entries, more}: exact is 1 when `after` lies within
-- the retained history, else the entries follow the floor `start`; at most
-- `count` entries and about `max_bytes` (at least one entry); more is 1 when
-- the page stopped at a limit rather than at the end of the history.
local function replay(keys, args)
  local key, after, count, max_bytes = keys[1], args[1], tonumber(args[2]), tonumber(args[3])
  if redis.call('EXISTS', key) == 0 then
    -- Nothing was published, or the history was lost: only a client that
    -- had seen nothing can resume exactly.
    return {after == NOTHING_YET and 1 or 0, NOTHING_YET, {}, 0}
  end
  local last, floor_id = stream_bounds(key)
  local exact, start = 0, floor_id
  if parse_id(after) and id_le(floor_id, after) and id_le(after, last) then
    exact, start = 1, after
  elseif after == NOTHING_YET and is_creation_floor(floor_id) then
    -- Seen nothing, and nothing trimmed since the stream began: all of it is here.
    exact, start = 1, after
  end
  local entries, bytes, cursor = {}, 0, start
  while #entries < count do
    local wanted = math.min(READ_BATCH, count - #entries)
    local batch = redis.call('XRANGE', key, '(' .. cursor, '+', 'COUNT', wanted)
    for _, entry in ipairs(batch) do
      local size = entry_bytes(entry)
      if #entries > 0 and bytes + size > max_bytes then
        return {exact, start, entries, 1}
      end
      entries[#entries + 1] = entry
      bytes, cursor = bytes + size, entry[1]
    end
    if #batch < wanted then
      return {exact, start, entries, 0}
    end
  end
  return {exact, start, entries, 1}
end

-- Writes nothing, but Redis refuses it exactly when it would refuse a
-- publish (out of memory, a read-only replica, an ACL that does not let this
-- user write the ssehub:* key it is given): the readiness probe. It also
-- checks the commands a publish runs, which Redis checks only as they run.
local PUBLISH_COMMANDS = {
  {'exists'}, {'xadd', '*', 'd', ''}, {'xlen'}, {'xrange', '-', '+'}, {'xtrim', 'MAXLEN', '0'},
  {'xsetid', '0-1'}, {'spublish', ''}, {'get'}, {'set', ''},
}

local function ready(keys)
  for _, command in ipairs(PUBLISH_COMMANDS) do
    if not redis.acl_check_cmd(command[1], keys[1], unpack(command, 2)) then
      return redis.error_reply('NOPERM this user may not run ' .. command[1] .. ' on ' .. keys[1] .. ' (see the README\'s ACLs)')
    end
  end
  return 1
end

-- {1, stored id} when an idempotency key was used on this channel with another
-- fingerprint, else {0}: a batch is checked whole before any of it is stored.
local function conflicts(keys, args)
  local seen = redis.call('GET', idempotency_record(keys[1], args[1]))
  if seen and string.sub(seen, 1, #args[2] + 1) ~= args[2] .. ' ' then
    return 1
  end
  return 0
end

redis.register_function('ssehub_publish', publish)
redis.register_function{function_name = 'ssehub_head', callback = head, flags = {'no-writes'}}
redis.register_function{function_name = 'ssehub_replay', callback = replay, flags = {'no-writes'}}
redis.register_function('ssehub_ready', ready)
redis.register_function{function_name = 'ssehub_conflicts', callback = conflicts, flags = {'no-writes'}}
