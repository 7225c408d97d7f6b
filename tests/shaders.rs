//! Every WGSL family parses and validates with naga (the same naga wgpu compiles with), without a
//! GPU; each `Params` struct has the size of its Rust twin; every storage binding is read_write, as
//! the shared-arena binding convention requires.

use kiln::wgpu::shaders::Shader;

fn module(shader: Shader) -> (naga::Module, naga::valid::ModuleInfo) {
    let source = shader.source();
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}: {}", shader.file(), e.emit_to_string(&source)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", shader.file(), e.emit_to_string(&source)));
    (module, info)
}

#[test]
fn every_shader_parses_and_validates() {
    for shader in Shader::ALL {
        let (module, _) = module(shader);
        assert!(!module.entry_points.is_empty(), "{} has no entry point", shader.file());
    }
}

#[test]
fn params_structs_match_their_rust_twins() {
    for shader in Shader::ALL {
        let (module, _) = module(shader);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let params = module
            .global_variables
            .iter()
            .find(|(_, v)| v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0))
            .unwrap_or_else(|| panic!("{} has no binding 0", shader.file()))
            .1;
        assert_eq!(
            params.space,
            naga::AddressSpace::Uniform,
            "{}: binding 0 must be the uniform Params",
            shader.file()
        );
        assert_eq!(
            layouter[params.ty].size as usize,
            shader.params_size(),
            "{}: Params size differs from the Rust struct",
            shader.file()
        );
    }
}

#[test]
fn storage_bindings_are_read_write() {
    for shader in Shader::ALL {
        let (module, _) = module(shader);
        for (_, v) in module.global_variables.iter() {
            if let naga::AddressSpace::Storage { access } = v.space {
                assert!(
                    access.contains(naga::StorageAccess::LOAD | naga::StorageAccess::STORE),
                    "{}: `{}` must be read_write",
                    shader.file(),
                    v.name.as_deref().unwrap_or("?")
                );
            }
        }
    }
}
