module example.com/hoistdemo

go 1.19
