module kstep.invalid/dotenv/gotables

go 1.22
