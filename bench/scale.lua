-- wrk script of bench/scale.sh: each request for a random item of a list.
-- Arguments: MODE (me | by_id | login | floor), LIST (one token, id or
-- address a line), ADMIN_TOKEN (by_id's bearer). `floor` is the server's
-- floor (a routed 404, bench/throughput.sh) with a random item's bearer
-- header, so that it costs wrk what `me` does.
local items, mode, admin = {}, nil, nil
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  mode, admin = args[1], args[3]
  for line in io.lines(args[2]) do
    if line ~= "" then items[#items + 1] = line end
  end
  math.randomseed(os.time() * 100 + (seed or 0))
end

function request()
  local item = items[math.random(#items)]
  if mode == "me" then
    return wrk.format("GET", "/api/users/me", { ["Authorization"] = "Bearer " .. item })
  elseif mode == "floor" then
    return wrk.format("GET", "/api/bench-floor", { ["Authorization"] = "Bearer " .. item })
  elseif mode == "by_id" then
    return wrk.format("GET", "/api/users/" .. item, { ["Authorization"] = "Bearer " .. admin })
  else
    return wrk.format("POST", "/api/auth/jwt/login",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "username=" .. item .. "&password=bench%20password%201")
  end
end
