-- status: write a tracked job's status record, one round trip. Composed after
-- status_lib.lua, which holds the code, its KEYS and ARGV, and its atomicity argument.
return write_status(KEYS, ARGV)
