module energysched.local/pause

go 1.22
