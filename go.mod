module github.com/leverege/lock

go 1.26.0

require github.com/gomodule/redigo v1.9.3
